"""Canonical artifacts: pinned schemas, dense numbering, determinism, stats table."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from curatornet.artifacts import ITEMS_SCHEMA, PURCHASES_SCHEMA, embeddings_matrix, embeddings_schema
from curatornet.data.layout import input_files
from curatornet.data.prepare import prepare_dataset, write_canonical
from curatornet.data.synthetic import generate, parameters_for, write_public_release

SYNTHETIC = {
    "format": "synthetic",
    "path": None,
    "embeddings": "synthetic",
    "synthetic": {"preset": "tiny", "scale": 1.0, "embedding_dim": 16},
}
NAMES = ("items.parquet", "embeddings.parquet", "purchases.parquet", "stats.csv")


def build(folder, seed: int = 5):
    """Generate the tiny data set into folder/raw and write the artifacts into folder/data."""
    data = generate(parameters_for("tiny", embedding_dim=16), seed)
    write_public_release(data, folder=folder / "raw")
    canonical = prepare_dataset(SYNTHETIC, seed, raw_dir=folder / "raw")
    write_canonical(canonical, *(folder / "data" / name for name in NAMES))
    return canonical


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("built")
    return folder, build(folder)


def test_artifacts_have_the_pinned_schemas(built):
    folder, _ = built
    assert pq.read_schema(folder / "data" / "items.parquet").remove_metadata() == ITEMS_SCHEMA
    assert pq.read_schema(folder / "data" / "purchases.parquet").remove_metadata() == PURCHASES_SCHEMA
    assert pq.read_schema(folder / "data" / "embeddings.parquet").remove_metadata() == embeddings_schema(16)
    stats = pd.read_csv(folder / "data" / "stats.csv")
    assert list(stats.columns) == ["statistic", "value"] and "users_with_test_basket" in set(stats["statistic"])


def test_numbering_baskets_and_split(built):
    folder, canonical = built
    items = pd.read_parquet(folder / "data" / "items.parquet")
    purchases = pd.read_parquet(folder / "data" / "purchases.parquet")
    assert items["item"].tolist() == list(range(len(items)))
    assert items["item_id"].is_monotonic_increasing
    assert sorted(purchases["user"].unique()) == list(range(purchases["user"].nunique()))
    per_basket = purchases.groupby(["user", "basket"])["time"].agg(["min", "max"])
    assert (per_basket["min"] == per_basket["max"]).all()  # one timestamp per basket
    order = per_basket["min"].groupby(level="user").diff().dropna()
    assert (order > pd.Timedelta(0)).all()  # baskets numbered in time order
    baskets = purchases.groupby("user")["basket"].agg(["max", "nunique"])
    assert (baskets["max"] + 1 == baskets["nunique"]).all()  # 0-based, no gaps
    test = purchases[purchases["split"] == "test"]
    assert (test.groupby("user")["basket"].min() == baskets.loc[test["user"].unique(), "max"]).all()
    assert set(test["user"]) == set(baskets.index[baskets["max"] >= 1])
    # The validation basket is the one before the test basket, for users with at least three.
    valid = purchases[purchases["split"] == "valid"]
    assert set(valid["user"]) == set(baskets.index[baskets["max"] >= 2]) and len(valid)
    valid_baskets = valid.groupby("user")["basket"].agg(["min", "max"])
    before_test = baskets.loc[valid_baskets.index, "max"] - 1
    assert (valid_baskets["min"] == before_test).all() and (valid_baskets["max"] == before_test).all()
    assert set(purchases["split"]) == {"train", "valid", "test"}
    assert canonical.stats["users_with_valid_basket"] == valid["user"].nunique()
    table = pq.read_table(folder / "data" / "embeddings.parquet")
    assert (embeddings_matrix(table) == canonical.embeddings).all()


def test_same_seed_gives_byte_identical_artifacts(built, tmp_path):
    folder, _ = built
    build(tmp_path)
    for name in NAMES:
        assert (tmp_path / "data" / name).read_bytes() == (folder / "data" / name).read_bytes(), name


def test_input_files_follow_the_config(tmp_path):
    assert input_files(SYNTHETIC, "results/raw") == {
        "inventory": "results/raw/ugallery_inventory.csv",
        "purchases": "results/raw/ugallery_purchases.csv",
        "embeddings": "results/raw/resnet50_embeddings.npy",
    }
    (tmp_path / "valid_sales.csv").write_text("x\n")
    (tmp_path / "valid_artworks.csv").write_text("x\n")
    real = {"format": "ugallery", "path": str(tmp_path), "embeddings": "synthetic"}
    assert input_files(real) == {
        "inventory": str(tmp_path / "valid_artworks.csv"),
        "purchases": str(tmp_path / "valid_sales.csv"),
    }
    with_file = {**real, "embeddings": str(tmp_path / "emb.npy")}
    assert input_files(with_file)["embeddings"] == str(tmp_path / "emb.npy")


def test_big_embeddings_are_written_in_bounded_row_groups(built, tmp_path, monkeypatch):
    import numpy as np

    import curatornet.data.prepare as prepare

    _, canonical = built
    assert prepare.embedding_rows_per_group(np.empty((0, 2048), np.float32)) == 8192  # 64 MB of 2048-d rows
    monkeypatch.setattr(prepare, "EMBEDDING_ROW_GROUP_BYTES", 16 * 4 * 100)  # 100 rows of 16 floats
    write_canonical(canonical, *(tmp_path / name for name in NAMES))
    metadata = pq.ParquetFile(tmp_path / "embeddings.parquet").metadata
    assert len(canonical.embeddings) == 400 and metadata.num_row_groups == 4
    table = pq.read_table(tmp_path / "embeddings.parquet")
    assert (embeddings_matrix(table) == canonical.embeddings).all()


def test_embeddings_matrix_sorts_rows_by_item_across_chunks(built):
    import numpy as np
    import pyarrow as pa

    _, canonical = built
    n, dim = canonical.embeddings.shape
    shuffled = np.random.default_rng(0).permutation(n)
    column = pa.FixedSizeListArray.from_arrays(pa.array(canonical.embeddings[shuffled].reshape(-1)), dim)
    table = pa.table({"item": pa.array(shuffled.astype(np.int32)), "embedding": column})
    chunked = pa.concat_tables([table.slice(0, 7), table.slice(7, 100), table.slice(107)])  # uneven chunks
    assert chunked.column("embedding").num_chunks == 3
    matrix = embeddings_matrix(chunked)
    assert matrix.dtype == np.float32 and (matrix == canonical.embeddings).all()
