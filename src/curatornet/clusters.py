"""Visual clusters of the items (paper section 3.5, "Creating Visual Clusters").

The embeddings are standardised per dimension, reduced with PCA, and clustered
with k-means restarted several times, each restart with its own seed; the
restart with the highest silhouette coefficient (Euclidean, on the PCA points)
is kept. A 2-D map of the items is made for the cluster figure (the paper used
UMAP; here the first two principal components, or t-SNE on the first 50).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import pairwise_distances, silhouette_score
from threadpoolctl import threadpool_limits

from curatornet.artifacts import CLUSTER_ITEMS_SCHEMA, embeddings_matrix
from curatornet.errors import InputError

log = logging.getLogger(__name__)

MAP_METHODS = ("pca", "pca-tsne")
#: t-SNE runs on this many principal components (fewer when the PCA is smaller).
TSNE_INPUT_DIM = 50
#: t-SNE iterations: half of scikit-learn's default keeps the UGallery-sized
#: map under a minute on two cores, and the layout has settled by then.
TSNE_MAX_ITER = 500
#: Largest item count for which the pairwise distance matrix (float32) is
#: computed once and shared by all restarts' silhouettes (about 1 GB).
PRECOMPUTED_SILHOUETTE_MAX_ITEMS = 16_000

RESTARTS_COLUMNS = ("restart", "seed", "silhouette", "inertia", "selected")


@dataclass
class Clustering:
    """Result of :func:`cluster_embeddings`."""

    labels: np.ndarray  # int32 (n_items,), cluster of each item (row order of the input)
    restarts: pd.DataFrame  # one row per restart, see RESTARTS_COLUMNS
    points: np.ndarray  # float32 (n_items, pca_dim), the standardised PCA points


def standardise(matrix: np.ndarray) -> np.ndarray:
    """Z-score every dimension; constant dimensions become 0 instead of NaN."""
    x = np.asarray(matrix, dtype=np.float64)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std == 0] = 1.0  # a constant dimension carries no information: centre it only
    return ((x - mean) / std).astype(np.float32)


def reduce_dimensions(matrix: np.ndarray, pca_dim: int, seed: int) -> np.ndarray:
    """PCA of the (already standardised) matrix to ``pca_dim`` components (fewer if it has fewer)."""
    n, d = matrix.shape
    dim = min(pca_dim, n, d)
    if dim < pca_dim:
        log.warning("PCA to %d dimensions instead of %d: only %d items of dimension %d", dim, pca_dim, n, d)
    pca = PCA(n_components=dim, random_state=seed)
    points = pca.fit_transform(matrix).astype(np.float32)
    log.info("PCA %d -> %d dimensions keeps %.1f%% of the variance", d, dim, 100 * pca.explained_variance_ratio_.sum())
    return points


def kmeans_restarts(points: np.ndarray, k: int, restarts: int, seed: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Run k-means ``restarts`` times (seed + r, one initialisation each); keep the best silhouette.

    Returns the labels of the selected restart and a table with one row per
    restart (restart, seed, silhouette, inertia, selected).
    """
    n = len(points)
    if not 2 <= k < n:
        raise InputError(None, "clusters.k", k, f"k-means needs 2 <= k < number of items ({n})")
    # The silhouette needs all pairwise distances; for UGallery-sized inputs
    # computing them once is far cheaper than once per restart.
    distances = pairwise_distances(points) if n <= PRECOMPUTED_SILHOUETTE_MAX_ITEMS else None
    rows = []
    best_labels = None
    best_score = -np.inf
    for restart in range(restarts):
        run_seed = seed + restart
        start = time.perf_counter()
        model = KMeans(n_clusters=k, n_init=1, random_state=run_seed).fit(points)
        labels = model.labels_.astype(np.int32)
        if np.unique(labels).size < 2:
            score = -1.0  # degenerate clustering: worst possible silhouette
        elif distances is not None:
            score = float(silhouette_score(distances, labels, metric="precomputed"))
        else:
            score = float(silhouette_score(points, labels, metric="euclidean"))
        rows.append((restart, run_seed, score, float(model.inertia_)))
        log.info(
            "restart %d (seed %d): silhouette %.4f, inertia %.1f, %d iterations, %.1f s",
            restart,
            run_seed,
            score,
            model.inertia_,
            model.n_iter_,
            time.perf_counter() - start,
        )
        if score > best_score:  # strict: ties keep the earliest restart
            best_score, best_labels = score, labels
    table = pd.DataFrame(rows, columns=list(RESTARTS_COLUMNS[:-1]))
    table["restart"] = table["restart"].astype(np.int32)
    table["seed"] = table["seed"].astype(np.int64)
    table["selected"] = False
    table.loc[int(np.argmax(table["silhouette"].to_numpy())), "selected"] = True
    return best_labels, table


def map_items(points: np.ndarray, method: str, seed: int, threads: int = 1) -> np.ndarray:
    """2-D coordinates (float32, n x 2) of the items for the cluster figure."""
    if method not in MAP_METHODS:
        raise InputError(None, "clusters.map_method", method, f"unknown map method, expected one of {MAP_METHODS}")
    if method == "pca" or len(points) < 5:
        xy = points[:, :2]
        if xy.shape[1] < 2:  # a 1-D PCA: put everything on a line
            xy = np.column_stack([xy[:, 0], np.zeros(len(xy), dtype=np.float32)])
        return np.ascontiguousarray(xy, dtype=np.float32)
    from sklearn.manifold import TSNE  # imported here: only this method needs it

    data = points[:, : min(TSNE_INPUT_DIM, points.shape[1])]
    perplexity = min(30.0, (len(points) - 1) / 3.0)  # t-SNE requires perplexity < n
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        init="pca",
        random_state=seed,
        max_iter=TSNE_MAX_ITER,
        n_jobs=threads,
    )
    return tsne.fit_transform(data).astype(np.float32)


def cluster_embeddings(
    matrix: np.ndarray, k: int, pca_dim: int, restarts: int, seed: int, threads: int = 1
) -> Clustering:
    """Standardise, PCA and k-means with restarts (see the module docstring)."""
    if restarts < 1:
        raise InputError(None, "clusters.restarts", restarts, "need at least one restart")
    with threadpool_limits(limits=max(1, int(threads))):
        points = reduce_dimensions(standardise(matrix), pca_dim, seed)
        labels, table = kmeans_restarts(points, k, restarts, seed)
    return Clustering(labels=labels, restarts=table, points=points)


def cluster_items(
    embeddings: pa.Table,
    k: int,
    pca_dim: int,
    restarts: int,
    seed: int,
    map_method: str = "pca",
    threads: int = 1,
    source: str | Path = "embeddings.parquet",
) -> tuple[pd.DataFrame, pa.Table]:
    """The `clusters` stage: (restarts table, items table with item, cluster, x, y)."""
    for column in ("item", "embedding"):
        if column not in embeddings.column_names:
            raise InputError(source, column, embeddings.column_names, "required column is missing")
    items = np.sort(embeddings.column("item").to_numpy())
    if len(items) == 0:
        raise InputError(source, "item", 0, "no items")
    if items[0] != 0 or items[-1] != len(items) - 1 or np.any(np.diff(items) != 1):
        bad = items[np.flatnonzero(np.diff(items) != 1)[:1]] if len(items) > 1 else items
        raise InputError(source, "item", bad.tolist(), "item indexes must be unique and dense 0..N-1")
    if not pa.types.is_fixed_size_list(embeddings.column("embedding").type):
        raise InputError(source, "embedding", str(embeddings.column("embedding").type), "expected a fixed-size list")
    matrix = embeddings_matrix(embeddings)
    if not np.isfinite(matrix).all():
        row = int(np.flatnonzero(~np.isfinite(matrix).all(axis=1))[0])
        raise InputError(source, "embedding", f"item {row}", "embedding has NaN or infinite values")
    start = time.perf_counter()
    result = cluster_embeddings(matrix, k, pca_dim, restarts, seed, threads)
    log.info("clustering of %d items took %.1f s", len(matrix), time.perf_counter() - start)
    start = time.perf_counter()
    with threadpool_limits(limits=max(1, int(threads))):
        xy = map_items(result.points, map_method, seed, threads)
    log.info("%s map took %.1f s", map_method, time.perf_counter() - start)
    selected = result.restarts.loc[result.restarts["selected"]].iloc[0]
    log.info(
        "selected restart %d (seed %d), silhouette %.4f", selected["restart"], selected["seed"], selected["silhouette"]
    )
    table = pa.table(
        {
            "item": pa.array(np.arange(len(matrix), dtype=np.int32)),
            "cluster": pa.array(result.labels.astype(np.int32)),
            "x": pa.array(xy[:, 0]),
            "y": pa.array(xy[:, 1]),
        },
        schema=CLUSTER_ITEMS_SCHEMA,
    )
    return result.restarts, table
