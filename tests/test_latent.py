"""The second generative model (latent factors): research layout, the loader, plausible statistics."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from curatornet.artifacts import ITEMS_SCHEMA, PURCHASE_SPLITS, PURCHASES_SCHEMA, embeddings_schema
from curatornet.cli import main
from curatornet.config import check_config
from curatornet.data.latent import LATENT_EMBEDDINGS, generate_latent, latent_parameters, write_research_layout
from curatornet.data.prepare import prepare_dataset, write_canonical

DIM = 16
ARTWORK_COLUMNS = ["id", "artist_id", "upload_date", "original", "medium_id"]
SALES_COLUMNS = ["id", "customer_id", "artwork_id", "order_date"]
# The real files' time format: milliseconds sometimes missing or shortened.
TIME_FORMAT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,3})?$")
OUTPUTS = ("items.parquet", "embeddings.parquet", "purchases.parquet", "stats.csv")


def dataset(folder) -> dict:
    return {"format": "ugallery", "path": str(folder), "embeddings": str(folder / LATENT_EMBEDDINGS)}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The default (UGallery-sized) latent-factor data set with short embeddings, and its canonical form."""
    folder = tmp_path_factory.mktemp("latent")
    write_research_layout(generate_latent(latent_parameters(embedding_dim=DIM), 7), folder)
    return folder, prepare_dataset(dataset(folder), 0)


def test_make_dataset_command_writes_the_research_layout(tmp_path, capsys):
    out = tmp_path / "made"
    assert main(["make-dataset", "--out", str(out), "--seed", "3", "--scale", "0.2", "--embedding-dim", str(DIM)]) == 0
    assert "embeddings.npy" in capsys.readouterr().out
    artworks = pd.read_csv(out / "valid_artworks.csv", dtype=str)
    sales = pd.read_csv(out / "valid_sales.csv", dtype=str)
    assert list(artworks.columns) == ARTWORK_COLUMNS and list(sales.columns) == SALES_COLUMNS
    assert set(artworks["original"]) == {"t", "f"}
    assert artworks["medium_id"].astype(int).between(0, 19).all()
    assert artworks["upload_date"].str.match(TIME_FORMAT).all() and sales["order_date"].str.match(TIME_FORMAT).all()
    assert artworks["id"].is_unique and sales["id"].is_unique and sales["artwork_id"].isin(artworks["id"]).all()
    rows = np.load(out / "embeddings.npy", allow_pickle=True)
    assert rows.shape == (len(artworks), 2) and rows[0, 1].shape == (DIM,)
    assert main(["make-dataset", "--out", str(out), "--scale", "-1"]) == 2


def test_same_columns_as_the_real_files(ugallery_dir, written):
    folder, _ = written
    for name in ("valid_artworks.csv", "valid_sales.csv"):
        real = pd.read_csv(ugallery_dir / name, nrows=1).columns.tolist()
        assert pd.read_csv(folder / name, nrows=1).columns.tolist() == real


def test_loader_accepts_it_and_prepare_writes_valid_artifacts(written, tmp_path):
    folder, data = written
    check_config({"dataset": dataset(folder)})
    write_canonical(data, *(tmp_path / name for name in OUTPUTS))
    assert pq.read_schema(tmp_path / "items.parquet").remove_metadata() == ITEMS_SCHEMA
    assert pq.read_schema(tmp_path / "purchases.parquet").remove_metadata() == PURCHASES_SCHEMA
    assert pq.read_schema(tmp_path / "embeddings.parquet").remove_metadata() == embeddings_schema(DIM)
    purchases, items = data.purchases, data.items
    assert set(purchases["split"]) == set(PURCHASE_SPLITS)
    sales = purchases["item"].value_counts()
    assert not items["one_of_a_kind"].to_numpy()[sales.index[sales > 1]].any()
    assert (purchases["time"].to_numpy() > items["upload_time"].to_numpy()[purchases["item"]]).all()
    assert purchases["time"].min() >= pd.Timestamp("2014-01-01") and purchases["time"].max() < pd.Timestamp(
        "2018-06-01"
    )


def test_statistics_are_plausible(written):
    _, data = written
    stats = data.stats
    assert abs(stats["inventory_items"] - 7742) / 7742 < 0.15 and abs(stats["purchase_rows"] - 6535) / 6535 < 0.2
    assert 0.70 <= stats["one_of_a_kind_item_share"] <= 0.86
    assert 0.72 <= stats["one_of_a_kind_purchase_share"] <= 0.90
    assert 0.70 <= stats["basket_size_1"] / stats["baskets"] <= 0.90
    assert stats["basket_size_2"] > stats["basket_size_3"] > stats["basket_size_4"] > 0
    assert 0.18 <= stats["users_with_test_basket"] / stats["users"] <= 0.32
    assert 80 <= stats["median_upload_to_sale_days"] <= 250
    # Taste in the latent space makes baskets more artist-coherent than whole histories.
    assert stats["same_artist_pair_share_basket"] > stats["same_artist_pair_share_user"] > 0.02


def test_embeddings_follow_the_latent_space():
    data = generate_latent(latent_parameters(scale=0.3, embedding_dim=256), 5)
    features = np.concatenate(list(data.embedding_chunks()))
    assert features.shape == (len(data.artworks), 256) and features.min() >= 0.0
    assert 0.05 <= (features == 0).mean() <= 0.5
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    rng = np.random.default_rng(0)
    left, right = rng.integers(0, len(unit), 4000), rng.integers(0, len(unit), 4000)
    similarity = np.sum(unit[left] * unit[right], axis=1)
    distance = np.linalg.norm(data.latents[left] - data.latents[right], axis=1)
    assert np.corrcoef(distance, similarity)[0, 1] < -0.5  # close in the latent space, close in embeddings
    artist = data.artworks["artist_id"].to_numpy()
    order = np.argsort(artist, kind="stable")
    same = artist[order[:-1]] == artist[order[1:]]
    same_artist = np.sum(unit[order[:-1]][same] * unit[order[1:]][same], axis=1).mean()
    assert same_artist > similarity.mean() + 0.1


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    params = latent_parameters(scale=0.1, embedding_dim=8)
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        write_research_layout(generate_latent(params, seed), tmp_path / name)
    for file in ("valid_artworks.csv", "valid_sales.csv", LATENT_EMBEDDINGS):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file
    assert (tmp_path / "a" / "valid_sales.csv").read_bytes() != (tmp_path / "c" / "valid_sales.csv").read_bytes()
