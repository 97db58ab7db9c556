"""Visual clusters: restarts table, best-silhouette selection, items table, bad input."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

from curatornet.artifacts import CLUSTER_ITEMS_SCHEMA, embeddings_matrix, read_embeddings_matrix
from curatornet.clusters import (
    cluster_embeddings,
    cluster_items,
    cluster_matrix,
    map_items,
    scoring_sample,
    standardise,
)
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


def test_umap_map_keeps_the_blobs_apart_and_follows_the_seed():
    x, truth = blobs(n_per=40)
    points = standardise(x)[:, :8]
    xy = map_items(points, "umap", seed=3)
    assert xy.shape == (120, 2) and xy.dtype == np.float32 and np.isfinite(xy).all()
    # every item lies nearer the centre of its own blob on the map than the centre of any other
    centres = np.stack([xy[truth == c].mean(axis=0) for c in range(3)])
    nearest = np.argmin(((xy[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
    assert (nearest == truth).all()
    np.testing.assert_array_equal(xy, map_items(points, "umap", seed=3))
    assert not np.allclose(xy, map_items(points, "umap", seed=4))


def test_sampled_umap_map_covers_every_item():
    x = noise(200, dim=8)
    sample = np.arange(0, 200, 2)
    xy = map_items(x, "umap", seed=0, sample=sample)
    assert xy.shape == (200, 2) and np.isfinite(xy).all()
    np.testing.assert_allclose(xy[sample], map_items(x[sample], "umap", seed=0), rtol=1e-5)


def test_umap_is_loaded_without_tensorflow():
    code = (
        "import sys, numpy as np; from curatornet.clusters import map_items; "
        "map_items(np.random.default_rng(0).standard_normal((30, 4)).astype('float32'), 'umap', seed=0); "
        "print(sorted(m for m in ('tensorflow', 'keras', 'torch') if sys.modules.get(m)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


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
    with pytest.raises(InputError) as info:
        map_items(x, "tsne", seed=0)
    assert info.value.field == "clusters.map_method"


def restart_labels(points: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The labels of one restart, rerun independently of the module (one thread, as the module runs it)."""
    with threadpool_limits(limits=1, user_api="openmp"):
        return KMeans(n_clusters=k, n_init=1, random_state=seed).fit(points).labels_


def noise(n: int = 300, dim: int = 6, seed: int = 3) -> np.ndarray:
    """No true clusters: restarts disagree, so their silhouettes differ."""
    return np.random.default_rng(seed).random((n, dim)).astype(np.float32)


def test_exact_mode_gives_sklearns_silhouette_of_every_restart(caplog):
    x = noise(120)
    with caplog.at_level(logging.INFO, logger="curatornet.clusters"):
        result = cluster_embeddings(x, k=4, pca_dim=6, restarts=5, seed=7, exact_max_items=120, sample_size=30)
    assert result.sample is None
    assert "silhouette: exact, over all 120 items" in caplog.text
    for row in result.restarts.itertuples():
        labels = restart_labels(result.points, 4, row.seed)
        assert row.silhouette == pytest.approx(silhouette_score(result.points, labels), abs=1e-6)
    np.testing.assert_array_equal(
        result.labels, restart_labels(result.points, 4, 7 + int(np.argmax(result.restarts["silhouette"])))
    )


def test_sampled_mode_scores_every_restart_on_the_same_sample(caplog):
    x = noise(300)
    with caplog.at_level(logging.INFO, logger="curatornet.clusters"):
        result = cluster_embeddings(x, k=5, pca_dim=6, restarts=6, seed=2, exact_max_items=299, sample_size=80)
    sample = result.sample
    assert "silhouette: sampled, 80 of 300 items" in caplog.text
    assert len(sample) == 80 and len(np.unique(sample)) == 80 and np.all(np.diff(sample) > 0)
    np.testing.assert_array_equal(sample, scoring_sample(300, 299, 80, seed=2))
    full, sampled = [], []
    for row in result.restarts.itertuples():
        labels = restart_labels(result.points, 5, row.seed)
        sampled.append(silhouette_score(result.points[sample], labels[sample]))
        full.append(silhouette_score(result.points, labels))
        assert row.silhouette == pytest.approx(sampled[-1], abs=1e-6)
    assert not np.allclose(sampled, full)  # the sample, not all items, was scored
    # k-means still labels every item
    assert result.labels.shape == (300,) and np.unique(result.labels).size == 5


def test_sampled_mode_is_deterministic_and_follows_the_seed():
    x = noise(300)
    table = embeddings_table(x)
    settings = dict(k=5, pca_dim=6, restarts=3, map_method="pca-tsne", exact_max_items=100, sample_size=60)
    r1, a = cluster_items(table, seed=4, **settings)
    r2, b = cluster_items(table, seed=4, **settings)
    assert r1.equals(r2) and a.equals(b)
    assert not np.array_equal(scoring_sample(300, 100, 60, seed=4), scoring_sample(300, 100, 60, seed=5))
    # at or below the threshold nothing is sampled; a sample as big as the catalogue is no sample
    assert scoring_sample(300, 300, 60, seed=4) is None
    assert scoring_sample(300, None, 60, seed=4) is None
    assert scoring_sample(300, 100, 300, seed=4) is None


def test_sampled_map_covers_every_item(caplog):
    x = noise(240, dim=8)
    x[-1] = x[0]  # an item identical to another
    sample = np.arange(0, 240, 3)  # includes item 0, not item 239
    with caplog.at_level(logging.INFO, logger="curatornet.clusters"):
        xy = map_items(x, "pca-tsne", seed=0, threads=1, sample=sample)
    assert xy.shape == (240, 2) and xy.dtype == np.float32 and np.isfinite(xy).all()
    # the sampled items keep their t-SNE positions
    np.testing.assert_allclose(xy[sample], map_items(x[sample], "pca-tsne", seed=0, threads=1), rtol=1e-5)
    # the others lie among the sampled ones; a twin of a sampled item sits on it
    others = np.setdiff1d(np.arange(240), sample)
    assert (xy[others].min(axis=0) >= xy[sample].min(axis=0)).all()
    assert (xy[others].max(axis=0) <= xy[sample].max(axis=0)).all()
    np.testing.assert_allclose(xy[239], xy[0], atol=1e-5)
    assert len(np.unique(xy[others], axis=0)) > len(others) // 2  # placed individually, not collapsed


def test_sampled_map_is_logged_by_cluster_items(caplog):
    x = noise(150)
    with caplog.at_level(logging.INFO, logger="curatornet.clusters"):
        _, items = cluster_items(
            embeddings_table(x),
            k=3,
            pca_dim=6,
            restarts=2,
            seed=0,
            map_method="pca-tsne",
            exact_max_items=100,
            sample_size=50,
        )
    assert "map: t-SNE of the 50 sampled items; the other 100 placed" in caplog.text
    xy = np.column_stack([items.column("x").to_numpy(), items.column("y").to_numpy()])
    assert np.isfinite(xy).all() and items.num_rows == 150


def test_a_too_small_sample_is_an_input_error():
    with pytest.raises(InputError) as info:
        scoring_sample(500, 100, 1, seed=0)
    assert info.value.field == "clusters.sample_size" and info.value.value == 1


def test_default_threshold_keeps_ugallery_exact(repo_root):
    import yaml

    schema = yaml.safe_load((repo_root / "workflow/schemas/config.schema.yaml").read_text())
    clusters = schema["properties"]["clusters"]["properties"]
    assert clusters["exact_max_items"]["default"] >= 7742  # UGallery's catalogue: the paper's exact silhouette
    assert scoring_sample(7742, clusters["exact_max_items"]["default"], clusters["sample_size"]["default"], 0) is None


def test_the_clusters_do_not_depend_on_the_thread_count():
    x = noise(3000, dim=12, seed=5)
    one = cluster_embeddings(x, k=20, pca_dim=12, restarts=4, seed=0, threads=1)
    two = cluster_embeddings(x, k=20, pca_dim=12, restarts=4, seed=0, threads=2)
    assert one.restarts.equals(two.restarts)
    np.testing.assert_array_equal(one.labels, two.labels)


def test_the_stage_reads_the_matrix_one_row_group_at_a_time(tmp_path):
    x, _ = blobs(n_per=40)
    shuffled = np.random.default_rng(2).permutation(len(x))
    write_parquet(embeddings_table(x, shuffled), tmp_path / "e.parquet", row_group_size=25)  # 5 groups
    matrix = read_embeddings_matrix(tmp_path / "e.parquet")
    np.testing.assert_array_equal(matrix, x)
    np.testing.assert_array_equal(matrix, embeddings_matrix(read_table(tmp_path / "e.parquet")))
    r1, a = cluster_items(embeddings_table(x, shuffled), k=3, pca_dim=4, restarts=2, seed=0)
    r2, b = cluster_matrix(matrix, k=3, pca_dim=4, restarts=2, seed=0)
    assert r1.equals(r2) and a.equals(b)


def test_reading_a_bad_embeddings_file_names_it(tmp_path):
    x, _ = blobs()
    gap = embeddings_table(x).set_column(0, "item", pa.array(np.arange(len(x), dtype=np.int32) * 2))
    write_parquet(gap, tmp_path / "gap.parquet")
    write_parquet(embeddings_table(x).drop_columns(["embedding"]), tmp_path / "none.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    for name, field in (("gap.parquet", "item"), ("none.parquet", "embedding"), ("junk.parquet", None)):
        with pytest.raises(InputError) as info:
            read_embeddings_matrix(tmp_path / name)
        assert info.value.file.endswith(name) and info.value.field == field
