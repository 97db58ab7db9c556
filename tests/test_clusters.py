"""Visual clusters: restarts table, best-silhouette selection, items table, bad input."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from curatornet.artifacts import CLUSTER_ITEMS_SCHEMA
from curatornet.clusters import cluster_items, map_items, standardise
from curatornet.errors import InputError
from curatornet.io import read_table, write_parquet


def blobs(n_per: int = 25, dim: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated groups, plus a constant dimension (zero standard deviation)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6.0, size=(3, dim))
    truth = np.repeat(np.arange(3), n_per)
    x = centres[truth] + rng.normal(size=(len(truth), dim))
    x[:, 0] = 3.0
    return x.astype(np.float32), truth


def embeddings_table(x: np.ndarray, order: np.ndarray | None = None) -> pa.Table:
    items = np.arange(len(x), dtype=np.int32) if order is None else order.astype(np.int32)
    column = pa.FixedSizeListArray.from_arrays(pa.array(x[items].reshape(-1)), x.shape[1])
    return pa.table({"item": items, "embedding": column})


def test_standardise_guards_constant_dimensions():
    x, _ = blobs()
    z = standardise(x)
    assert np.isfinite(z).all()
    np.testing.assert_allclose(z[:, 0], 0.0)
    np.testing.assert_allclose(z[:, 1:].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z[:, 1:].std(axis=0), 1.0, atol=1e-4)


def test_twenty_restarts_and_the_best_is_selected(tmp_path):
    x, truth = blobs()
    restarts, items = cluster_items(embeddings_table(x), k=3, pca_dim=5, restarts=20, seed=10, map_method="pca")
    assert len(restarts) == 20
    assert list(restarts.columns) == ["restart", "seed", "silhouette", "inertia", "selected"]
    assert restarts["restart"].tolist() == list(range(20))
    assert restarts["seed"].tolist() == list(range(10, 30))
    assert restarts["selected"].sum() == 1
    best = restarts.loc[restarts["selected"]].iloc[0]
    assert best["silhouette"] == restarts["silhouette"].max()
    assert items.schema.equals(CLUSTER_ITEMS_SCHEMA)
    labels = items.column("cluster").to_numpy()
    # the planted groups are recovered (up to label names)
    assert all(len(set(labels[truth == g])) == 1 for g in range(3)) and len(set(labels)) == 3
    write_parquet(restarts, tmp_path / "restarts.parquet")
    assert read_table(tmp_path / "restarts.parquet").num_rows == 20


def test_selected_restart_is_the_highest_silhouette_even_when_restarts_differ():
    # Uniform noise has no true clusters, so restarts disagree and their silhouettes differ.
    x = np.random.default_rng(3).random((60, 6)).astype(np.float32)
    restarts, _ = cluster_items(embeddings_table(x), k=5, pca_dim=6, restarts=6, seed=0)
    assert restarts["silhouette"].nunique() > 1
    assert restarts["selected"].sum() == 1
    assert restarts.loc[restarts["silhouette"].idxmax(), "selected"]


def test_rows_follow_the_item_column_and_same_seed_same_result():
    x, _ = blobs()
    shuffled = np.random.default_rng(1).permutation(len(x))
    r1, a = cluster_items(embeddings_table(x), k=3, pca_dim=4, restarts=3, seed=0)
    r2, b = cluster_items(embeddings_table(x, shuffled), k=3, pca_dim=4, restarts=3, seed=0)
    assert a.equals(b) and r1.equals(r2)
    assert a.column("item").to_pylist() == list(range(len(x)))


def test_tsne_map_has_two_finite_coordinates():
    x, _ = blobs(n_per=15)
    xy = map_items(standardise(x)[:, :8], "pca-tsne", seed=0, threads=1)
    assert xy.shape == (45, 2) and xy.dtype == np.float32 and np.isfinite(xy).all()


def test_bad_input_raises_input_error():
    x, _ = blobs()
    with pytest.raises(InputError) as info:
        cluster_items(embeddings_table(x), k=len(x), pca_dim=4, restarts=2, seed=0)
    assert info.value.field == "clusters.k"
    with pytest.raises(InputError) as info:
        no_embedding = embeddings_table(x).drop_columns(["embedding"])
        cluster_items(no_embedding, k=3, pca_dim=4, restarts=2, seed=0, source="e.parquet")
    assert info.value.field == "embedding" and info.value.file == "e.parquet"
    gap = embeddings_table(x).set_column(0, "item", pa.array(np.arange(len(x), dtype=np.int32) * 2))
    with pytest.raises(InputError) as info:
        cluster_items(gap, k=3, pca_dim=4, restarts=2, seed=0)
    assert info.value.field == "item"
    bad = x.copy()
    bad[4, 2] = np.nan
    with pytest.raises(InputError) as info:
        cluster_items(embeddings_table(bad), k=3, pca_dim=4, restarts=2, seed=0)
    assert info.value.value == "item 4"
    with pytest.raises(InputError):
        map_items(x, "umap", seed=0)
