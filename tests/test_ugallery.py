"""The UGallery loaders: the real research files, the public-release layouts, timestamps, made-up embeddings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from curatornet.data.embeddings import synthetic_embeddings
from curatornet.data.prepare import prepare_dataset
from curatornet.data.ugallery import load_ugallery

DATASET = {"format": "ugallery", "embeddings": "synthetic", "synthetic": {"embedding_dim": 8}}


def dataset(folder) -> dict:
    return {**DATASET, "path": str(folder)}


def write_research(folder, artworks: pd.DataFrame, sales: pd.DataFrame) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    artworks.to_csv(folder / "valid_artworks.csv", index=False)
    sales.to_csv(folder / "valid_sales.csv", index=False)


def small_research_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    artworks = pd.DataFrame(
        {
            "id": [10, 11, 12, 13, 14],
            "artist_id": [1, 1, 2, 3, 3],
            "upload_date": [
                "2013-01-01 10:00:00",
                "2013-02-01 10:00:00.5",
                "2013-03-01 10:00:00.123",
                "2013-04-01 09:00:00",
                "2013-05-01 09:00:00",
            ],
            "original": ["t", "t", "f", "t", "f"],
            "medium_id": [0, 0, 12, 12, 3],
        }
    )
    sales = pd.DataFrame(
        {
            "id": range(7),
            "customer_id": [100, 100, 100, 200, 200, 300, 100],
            "artwork_id": [10, 12, 11, 12, 13, 14, 14],
            "order_date": [
                "2014-01-05 12:00:00.250",
                "2014-01-05 12:00:00.250",
                "2014-03-01 08:00:00",
                "2014-02-01 08:00:00",
                "2014-02-02 08:00:00",
                "2014-05-01 08:00:00",
                "2015-01-01 00:00:00",
            ],
        }
    )
    return artworks, sales


def to_public(artworks: pd.DataFrame, sales: pd.DataFrame, folder, inventory_name: str, basket_lists: bool) -> None:
    """The same facts in a public-release layout (no `original` column, hashed-style ids)."""
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "artwork_id_hash": artworks["id"].astype(str),
            "artist_id_hash": artworks["artist_id"].astype(str),
            "upload_timestamp": artworks["upload_date"],
        }
    ).to_csv(folder / inventory_name, index=False)
    if basket_lists:
        grouped = sales.groupby(["customer_id", "order_date"], sort=False)["artwork_id"].agg(
            lambda ids: str([str(i) for i in ids])
        )
        frame = grouped.reset_index().rename(
            columns={
                "customer_id": "user_id_hash",
                "artwork_id": "purchased_artwork_ids_hash",
                "order_date": "purchase_timestamp",
            }
        )
        frame[["user_id_hash", "purchased_artwork_ids_hash", "purchase_timestamp"]].to_csv(
            folder / "purchases.csv", index=False
        )
    else:
        pd.DataFrame(
            {
                "user_id_hash": sales["customer_id"],
                "purchase_timestamp": sales["order_date"],
                "artwork_id_hash": sales["artwork_id"],
            }
        ).to_csv(folder / "ugallery_purchases.csv", index=False)


def facts(folder) -> pd.DataFrame:
    """Layout-independent facts: who bought what when, in which basket and split."""
    data = prepare_dataset(dataset(folder), seed=0)
    merged = data.purchases.merge(data.items[["item", "item_id", "one_of_a_kind"]], on="item")
    return merged[["user_id", "item_id", "time", "basket", "split"]].sort_values(
        ["user_id", "time", "item_id"], ignore_index=True
    )


def test_small_research_layout_gives_baskets_and_split(tmp_path):
    write_research(tmp_path / "r", *small_research_tables())
    data = prepare_dataset(dataset(tmp_path / "r"), seed=0)
    p = data.purchases.merge(data.items[["item", "item_id"]], on="item")
    user_100 = p[p["user_id"] == "100"].sort_values(["basket", "item_id"])
    assert user_100["basket"].tolist() == [0, 0, 1, 2]
    # Three baskets: the last is the test basket, the one before it the validation basket.
    assert user_100["split"].tolist() == ["train", "train", "valid", "test"]
    # Two baskets: a test basket, but no validation basket (the user keeps one training basket).
    assert p.loc[p["user_id"] == "200", "split"].tolist() == ["train", "test"]
    assert p.loc[p["user_id"] == "300", "split"].tolist() == ["train"]
    assert data.stats["baskets"] == 6 and data.stats["users_with_test_basket"] == 2
    assert data.stats["users_with_valid_basket"] == 1
    assert data.items["one_of_a_kind"].tolist() == [True, True, False, True, False]
    assert data.items.loc[1, "upload_time"] == pd.Timestamp("2013-02-01 10:00:00.500")


@pytest.mark.parametrize(
    ("inventory_name", "basket_lists"), [("inventory.csv", False), ("ugallery_inventory.csv", True)]
)
def test_public_layouts_load_the_same_facts(tmp_path, inventory_name, basket_lists):
    artworks, sales = small_research_tables()
    write_research(tmp_path / "research", artworks, sales)
    to_public(artworks, sales, tmp_path / "public", inventory_name, basket_lists)
    pd.testing.assert_frame_equal(facts(tmp_path / "research"), facts(tmp_path / "public"))
    # Without the `original` flag an item is one-of-a-kind when it was sold exactly once.
    public_items = load_ugallery(tmp_path / "public").items.set_index("item_id")["one_of_a_kind"]
    assert public_items.to_dict() == {"10": True, "11": True, "12": False, "13": True, "14": False}


def test_epoch_and_iso_t_timestamps(tmp_path):
    artworks, sales = small_research_tables()
    artworks["upload_date"] = pd.to_datetime(artworks["upload_date"], format="ISO8601").dt.strftime("%Y-%m-%dT%H:%M:%S")
    sales["order_date"] = (
        pd.to_datetime(sales["order_date"], format="ISO8601").dt.as_unit("s").astype("int64").astype(str)
    )
    write_research(tmp_path, artworks, sales)
    loaded = load_ugallery(tmp_path)
    assert loaded.purchases["time"].min() == pd.Timestamp("2014-01-05 12:00:00")
    assert loaded.items["upload_time"].iloc[0] == pd.Timestamp("2013-01-01 10:00:00")


def test_real_files_load_to_the_published_counts(ugallery_dir):
    data = prepare_dataset(dataset(ugallery_dir), seed=0)
    assert len(data.purchases) == 6535
    assert data.purchases["user"].nunique() == 2919
    assert data.purchases.drop_duplicates(["user", "basket"]).shape[0] == 4897
    assert data.purchases.loc[data.purchases["split"] == "test", "user"].nunique() == 728
    assert data.purchases.loc[data.purchases["split"] == "valid", "user"].nunique() == 338
    assert data.stats["users_with_valid_basket"] == 338
    assert len(data.items) == 7742 and data.items["one_of_a_kind"].sum() == 6040
    assert data.embeddings.shape == (7742, 8)


def test_real_files_in_public_layouts_load_the_same_counts(ugallery_dir, tmp_path):
    artworks = pd.read_csv(ugallery_dir / "valid_artworks.csv", dtype=str)
    sales = pd.read_csv(ugallery_dir / "valid_sales.csv", dtype=str)
    to_public(artworks, sales, tmp_path / "public", "ugallery_inventory.csv", basket_lists=True)
    public = prepare_dataset(dataset(tmp_path / "public"), seed=0)
    assert len(public.purchases) == 6535 and public.stats["baskets"] == 4897
    assert public.stats["users_with_test_basket"] == 728
    # The "sold exactly once" rule recovers the paper's one-of-a-kind subset's sales count closely.
    assert abs(public.stats["one_of_a_kind_purchase_rows"] - 5336) / 5336 < 0.1


def test_made_up_embeddings_are_deterministic_and_group_artists():
    artists = pd.Series(["a"] * 30 + ["b"] * 30 + [None] * 5 + [f"x{i}" for i in range(200)])
    first = synthetic_embeddings(artists, dim=256, seed=3)
    np.testing.assert_array_equal(first, synthetic_embeddings(artists, dim=256, seed=3))
    assert not np.array_equal(first, synthetic_embeddings(artists, dim=256, seed=4))
    unit = first / np.linalg.norm(first, axis=1, keepdims=True)
    within_a = (unit[:30] @ unit[:30].T)[np.triu_indices(30, 1)].mean()
    across = (unit[:30] @ unit[65:].T).mean()
    assert within_a > across + 0.1
    assert first.min() >= 0
