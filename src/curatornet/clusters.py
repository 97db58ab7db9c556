"""Visual clusters of the items (paper section 3.5, "Creating Visual Clusters").

The embeddings are standardised per dimension, reduced with PCA, and clustered
with k-means restarted several times, each restart with its own seed; the
restart with the highest silhouette coefficient (Euclidean, on the PCA points)
is kept. A 2-D map of the items is made for the cluster figure: UMAP of the
first 50 principal components, as the paper's Figure 3 (umap-learn), or t-SNE
of them, or the first two components.

Scaling. The exact silhouette compares every pair of items, so its cost grows
with the square of the catalogue. Up to ``exact_max_items`` items (config
``clusters.exact_max_items``; UGallery's 7,742 items are below the default)
every restart is scored on all items, as in the paper, and UMAP (or t-SNE) maps
every item. Above it, one seeded sample of ``sample_size`` items (config
``clusters.sample_size``, drawn from ``clusters.seed``) serves both:

- every restart is scored by the silhouette of the sample (each sampled item
  against the other sampled items, what scikit-learn's ``sample_size`` option
  computes). The same sample for every restart makes the comparison between
  restarts paired, and its distance matrix is computed once, so a restart
  costs its k-means plus a cost that does not grow with the catalogue;
- UMAP (or t-SNE) maps the sampled items, and every other item is placed at the
  inverse-distance-weighted mean of the map positions of its
  ``MAP_NEIGHBOURS`` nearest sampled items, nearness measured in the space
  the map was given (the first 50 principal components). An item identical to a
  sampled item lands exactly on it.

k-means itself always runs on every item.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import pairwise_distances, silhouette_score
from threadpoolctl import threadpool_limits

from curatornet.artifacts import (
    CLUSTER_ITEMS_SCHEMA,
    CLUSTER_LABELS_SCHEMA,
    CLUSTER_MAP_SCHEMA,
    check_embeddings,
    first_non_finite_row,
    matrix_from_chunks,
)
from curatornet.errors import InputError
from curatornet.io import atomic_path, read_table, write_parquet

log = logging.getLogger(__name__)

MAP_METHODS = ("umap", "pca-tsne", "pca")
#: UMAP and t-SNE run on this many principal components (fewer when the PCA is smaller).
TSNE_INPUT_DIM = 50
#: UMAP's neighbourhood size and minimum distance: umap-learn's defaults.
UMAP_NEIGHBOURS = 15
UMAP_MIN_DIST = 0.1
#: t-SNE iterations: half of scikit-learn's default keeps the UGallery-sized
#: map under a minute on two cores, and the layout has settled by then.
TSNE_MAX_ITER = 500
#: Largest item count for which the pairwise distance matrix (float32) is
#: computed once and shared by all restarts' silhouettes (about 1 GB).
PRECOMPUTED_SILHOUETTE_MAX_ITEMS = 16_000
#: Sampled items whose map positions place an item left out of the t-SNE.
MAP_NEIGHBOURS = 5
#: Rows standardised at a time (bounds the float64 temporaries).
STANDARDISE_CHUNK_ROWS = 8192
#: Keeps the sample's random stream apart from the restarts' seeds.
_SAMPLE_STREAM = 0x5A3

RESTARTS_COLUMNS = ("restart", "seed", "silhouette", "inertia", "selected")


@dataclass
class Clustering:
    """Result of :func:`cluster_embeddings`."""

    labels: np.ndarray  # int32 (n_items,), cluster of each item (row order of the input)
    restarts: pd.DataFrame  # one row per restart, see RESTARTS_COLUMNS
    points: np.ndarray  # float32 (n_items, pca_dim), the standardised PCA points
    sample: np.ndarray | None = None  # sorted rows scored and mapped by t-SNE; None: every item (exact)


def standardise(matrix: np.ndarray, in_place: bool = False) -> np.ndarray:
    """Z-score every dimension (float32); constant dimensions become 0 instead of NaN.

    Statistics are accumulated in float64 over row chunks, so the float64
    temporaries stay small whatever the catalogue's size. ``in_place``
    overwrites a writable float32 ``matrix`` instead of allocating a copy.
    """
    x = np.asarray(matrix)
    n, d = x.shape
    chunks = [slice(lo, min(lo + STANDARDISE_CHUNK_ROWS, n)) for lo in range(0, n, STANDARDISE_CHUNK_ROWS)]
    mean = np.zeros(d)
    for rows in chunks:
        mean += x[rows].sum(axis=0, dtype=np.float64)
    mean /= max(n, 1)
    variance = np.zeros(d)
    for rows in chunks:
        variance += np.square(x[rows] - mean).sum(axis=0)
    std = np.sqrt(variance / max(n, 1))
    std[std == 0] = 1.0  # a constant dimension carries no information: centre it only
    reuse = in_place and x.dtype == np.float32 and x.flags.writeable
    out = x if reuse else np.empty((n, d), dtype=np.float32)
    for rows in chunks:
        out[rows] = (x[rows] - mean) / std
    return out


def reduce_dimensions(matrix: np.ndarray, pca_dim: int, seed: int) -> np.ndarray:
    """PCA of the (already standardised) matrix to ``pca_dim`` components (fewer if it has fewer).

    ``matrix`` may be overwritten (centred in place): pass a temporary.
    """
    n, d = matrix.shape
    dim = min(pca_dim, n, d)
    if dim < pca_dim:
        log.warning("PCA to %d dimensions instead of %d: only %d items of dimension %d", dim, pca_dim, n, d)
    pca = PCA(n_components=dim, random_state=seed, copy=False)  # no second copy of a big catalogue
    points = pca.fit_transform(matrix).astype(np.float32)
    log.info("PCA %d -> %d dimensions keeps %.1f%% of the variance", d, dim, 100 * pca.explained_variance_ratio_.sum())
    return points


def scoring_sample(n_items: int, exact_max_items: int | None, sample_size: int | None, seed: int) -> np.ndarray | None:
    """The sorted rows that score the restarts and feed t-SNE, or None for every item (exact).

    None when the catalogue has at most ``exact_max_items`` items (or that is
    None); otherwise ``min(sample_size, n_items)`` distinct rows drawn from
    ``seed`` alone, so every restart and every rerun sees the same sample.
    """
    if exact_max_items is None or n_items <= exact_max_items:
        return None
    if sample_size is None or sample_size < 2:
        raise InputError(None, "clusters.sample_size", sample_size, "sampled silhouette needs at least 2 items")
    if sample_size >= n_items:
        return None
    rng = np.random.default_rng([int(seed), _SAMPLE_STREAM])
    return np.sort(rng.choice(n_items, size=int(sample_size), replace=False))


def _fit_restart(points: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, float, int, float]:
    """One k-means run on one thread: (labels, inertia, iterations, seconds)."""
    start = time.perf_counter()
    with threadpool_limits(limits=1, user_api="openmp"):
        model = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(points)
    return model.labels_.astype(np.int32), float(model.inertia_), int(model.n_iter_), time.perf_counter() - start


@dataclass
class Restart:
    """One k-means restart: its labels of every point and its silhouette (on all points or the sample)."""

    restart: int
    seed: int
    labels: np.ndarray  # int32 (n_items,)
    silhouette: float
    inertia: float
    iterations: int
    seconds: float  # k-means alone

    def row(self) -> dict:
        """The restart's row of the restarts table (without ``selected``)."""
        return {"restart": self.restart, "seed": self.seed, "silhouette": self.silhouette, "inertia": self.inertia}


def scoring_distances(points: np.ndarray, sample: np.ndarray | None) -> np.ndarray | None:
    """The pairwise distances of the scored points when they fit in about 1 GB, else None.

    Computed on one BLAS thread: the same numbers whether one job scores every
    restart or each restart is a job of its own.
    """
    scored = points if sample is None else points[sample]
    if len(scored) > PRECOMPUTED_SILHOUETTE_MAX_ITEMS:
        return None
    with threadpool_limits(limits=1, user_api="blas"):
        return pairwise_distances(scored)


def silhouette(points: np.ndarray, labels: np.ndarray, sample: np.ndarray | None, distances=None) -> float:
    """Silhouette of ``labels`` on all points or on the rows ``sample``; ``distances`` from
    :func:`scoring_distances` when it gave them (-1 for a degenerate clustering)."""
    scored_labels = labels if sample is None else labels[sample]
    if np.unique(scored_labels).size < 2:
        return -1.0  # degenerate clustering: worst possible silhouette
    if distances is not None:
        return float(silhouette_score(distances, scored_labels, metric="precomputed"))
    scored = points if sample is None else points[sample]
    return float(silhouette_score(scored, scored_labels, metric="euclidean"))


def fit_restart(
    points: np.ndarray, k: int, restart: int, seed: int, sample: np.ndarray | None, distances=None
) -> Restart:
    """Restart ``restart`` (k-means seeded ``seed + restart``, one initialisation) and its silhouette."""
    n = len(points)
    if not 2 <= k < n:
        raise InputError(None, "clusters.k", k, f"k-means needs 2 <= k < number of items ({n})")
    labels, inertia, iterations, seconds = _fit_restart(points, k, seed + restart)
    start = time.perf_counter()
    if distances is None:
        distances = scoring_distances(points, sample)
    score = silhouette(points, labels, sample, distances)
    log.info(
        "restart %d (seed %d): silhouette %.4f, inertia %.1f, %d iterations, k-means %.1f s, silhouette %.1f s",
        restart,
        seed + restart,
        score,
        inertia,
        iterations,
        seconds,
        time.perf_counter() - start,
    )
    return Restart(restart, seed + restart, labels, score, inertia, iterations, seconds)


def select_restart(restarts: Sequence[Restart]) -> tuple[np.ndarray, pd.DataFrame]:
    """The labels of the restart with the highest silhouette (ties: the earliest), and the restarts
    table (restart, seed, silhouette, inertia, selected) in restart order."""
    ordered = sorted(restarts, key=lambda r: r.restart)
    if not ordered:
        raise InputError(None, "clusters.restarts", 0, "need at least one restart")
    table = pd.DataFrame([r.row() for r in ordered], columns=list(RESTARTS_COLUMNS[:-1]))
    table["restart"] = table["restart"].astype(np.int32)
    table["seed"] = table["seed"].astype(np.int64)
    table["selected"] = False
    best = int(np.argmax(table["silhouette"].to_numpy()))  # argmax: the first of equal maxima
    table.loc[best, "selected"] = True
    return ordered[best].labels, table


def kmeans_restarts(
    points: np.ndarray, k: int, restarts: int, seed: int, sample: np.ndarray | None = None, threads: int = 1
) -> tuple[np.ndarray, pd.DataFrame]:
    """Run k-means ``restarts`` times (seed + r, one initialisation each) in one process; keep the best
    silhouette. The workflow runs the same restarts as jobs of their own (:func:`fit_restart`, then
    :func:`select_restart`), with the same results.

    k-means clusters every point; the silhouette is that of all points, or of
    the rows ``sample`` (the same for every restart) when given. Restarts run
    side by side on ``threads`` threads, each restart on one: multi-threaded
    k-means sums in an order that depends on the thread count, so this keeps
    the labels the same whatever the core count, and on a busy machine no
    thread idles at a barrier waiting for another.
    """
    if restarts < 1:
        raise InputError(None, "clusters.restarts", restarts, "need at least one restart")
    distances = scoring_distances(points, sample)  # computed once, shared by every restart's silhouette
    workers = max(1, min(int(threads), restarts))
    # k-means++ seeding uses BLAS: one BLAS thread per restart too.
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=workers) as pool:
        runs = list(pool.map(lambda r: fit_restart(points, k, r, seed, sample, distances), range(restarts)))
    return select_restart(runs)


def place_by_neighbours(points: np.ndarray, anchors: np.ndarray, anchor_xy: np.ndarray) -> np.ndarray:
    """Map positions (float32, n x 2) of every point, given those of the rows ``anchors``.

    Anchors keep their positions; every other point goes to the
    inverse-distance-weighted mean of its ``MAP_NEIGHBOURS`` nearest anchors
    (onto an anchor it coincides with).
    """
    from sklearn.neighbors import NearestNeighbors  # imported here: only the sampled map needs it

    xy = np.empty((len(points), 2), dtype=np.float32)
    xy[anchors] = anchor_xy
    others = np.setdiff1d(np.arange(len(points)), anchors, assume_unique=True)
    if len(others) == 0:
        return xy
    index = NearestNeighbors(n_neighbors=min(MAP_NEIGHBOURS, len(anchors)), algorithm="brute")
    distance, nearest = index.fit(points[anchors]).kneighbors(points[others])
    coincide = distance <= 0
    weight = np.where(coincide.any(axis=1, keepdims=True), coincide, 1.0 / np.maximum(distance, 1e-30))
    weight /= weight.sum(axis=1, keepdims=True)
    xy[others] = np.einsum("nk,nkc->nc", weight, anchor_xy[nearest].astype(np.float64))
    return xy


def map_items(
    points: np.ndarray, method: str, seed: int, threads: int = 1, sample: np.ndarray | None = None
) -> np.ndarray:
    """2-D coordinates (float32, n x 2) of every item for the cluster figure.

    ``umap`` (the paper's Figure 3) and ``pca-tsne`` embed the first
    ``TSNE_INPUT_DIM`` principal components. With ``sample`` (sorted rows), they
    map only those and the others are placed by :func:`place_by_neighbours`; the
    PCA map needs no sample.
    """
    if method not in MAP_METHODS:
        raise InputError(None, "clusters.map_method", method, f"unknown map method, expected one of {MAP_METHODS}")
    if method == "pca" or len(points) < 5:
        xy = points[:, :2]
        if xy.shape[1] < 2:  # a 1-D PCA: put everything on a line
            xy = np.column_stack([xy[:, 0], np.zeros(len(xy), dtype=np.float32)])
        return np.ascontiguousarray(xy, dtype=np.float32)
    data = np.ascontiguousarray(points[:, : min(TSNE_INPUT_DIM, points.shape[1])])
    mapped = data if sample is None else data[sample]
    if method == "umap":
        reducer = _umap_class()(
            n_components=2,
            n_neighbors=min(UMAP_NEIGHBOURS, len(mapped) - 1),
            min_dist=UMAP_MIN_DIST,
            random_state=seed,
            n_jobs=1,  # a seeded UMAP runs on one thread whatever it is given
        )
        xy = reducer.fit_transform(mapped).astype(np.float32)
    else:
        from sklearn.manifold import TSNE  # imported here: only this method needs it

        perplexity = min(30.0, (len(mapped) - 1) / 3.0)  # t-SNE requires perplexity < n
        tsne = TSNE(
            n_components=2,
            perplexity=perplexity,
            init="pca",
            random_state=seed,
            max_iter=TSNE_MAX_ITER,
            n_jobs=threads,
        )
        xy = tsne.fit_transform(mapped).astype(np.float32)
    if sample is None:
        return xy
    if method == "umap":
        log.info("map: UMAP of the %d sampled items, the others placed from their nearest sampled items", len(sample))
    return place_by_neighbours(data, sample, xy)


def _umap_class():
    """umap-learn's UMAP, loaded without TensorFlow: the package imports TensorFlow for its
    ParametricUMAP whenever it can (25 s here), and only a model's training may import it."""
    hide = "tensorflow" not in sys.modules
    if hide:
        sys.modules["tensorflow"] = None  # an import of it now raises ImportError, which umap-learn expects
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from umap import UMAP
    finally:
        if hide and sys.modules.get("tensorflow", 0) is None:
            del sys.modules["tensorflow"]
    return UMAP


def project(matrix: np.ndarray, pca_dim: int, seed: int, threads: int = 1, overwrite: bool = False) -> np.ndarray:
    """The standardised PCA points (float32, n x pca_dim) of the embeddings ``matrix``.

    ``overwrite`` lets the standardisation reuse ``matrix`` (a float32 array
    the caller no longer needs), which saves a copy of the catalogue.
    """
    with threadpool_limits(limits=max(1, int(threads))):
        return reduce_dimensions(standardise(matrix, in_place=overwrite), pca_dim, seed)


def cluster_points(
    points: np.ndarray,
    k: int,
    restarts: int,
    seed: int,
    threads: int = 1,
    exact_max_items: int | None = None,
    sample_size: int | None = None,
) -> Clustering:
    """k-means with restarts on the PCA points, each scored exactly or on the sample (module docstring).

    Callers check ``restarts`` before the PCA, which is the expensive part to waste.
    """
    sample = scoring_sample(len(points), exact_max_items, sample_size, seed)
    if sample is None:
        log.info("silhouette: exact, over all %d items (exact_max_items %s)", len(points), exact_max_items)
    else:
        log.info(
            "silhouette: sampled, %d of %d items drawn from seed %d, the same for every restart "
            "(the catalogue exceeds exact_max_items %d)",
            len(sample),
            len(points),
            seed,
            exact_max_items,
        )
    with threadpool_limits(limits=max(1, int(threads))):
        labels, table = kmeans_restarts(points, k, restarts, seed, sample, threads)
    return Clustering(labels=labels, restarts=table, points=points, sample=sample)


def cluster_embeddings(
    matrix: np.ndarray,
    k: int,
    pca_dim: int,
    restarts: int,
    seed: int,
    threads: int = 1,
    exact_max_items: int | None = None,
    sample_size: int | None = None,
    overwrite: bool = False,
) -> Clustering:
    """Standardise, PCA and k-means with restarts (see the module docstring).

    ``exact_max_items=None`` scores every restart on all items whatever the
    size; ``overwrite``: see :func:`project`.
    """
    if restarts < 1:
        raise InputError(None, "clusters.restarts", restarts, "need at least one restart")
    points = project(matrix, pca_dim, seed, threads, overwrite)
    return cluster_points(points, k, restarts, seed, threads, exact_max_items, sample_size)


def cluster_items(
    embeddings: pa.Table, *, source: str | Path = "embeddings.parquet", **options
) -> tuple[pd.DataFrame, pa.Table]:
    """The `clusters` stage on an embeddings table; ``options`` are those of :func:`cluster_matrix`."""
    column_names = embeddings.column_names
    embedding_type = embeddings.column("embedding").type if "embedding" in column_names else None
    items = embeddings.column("item").to_numpy() if "item" in column_names else None
    check_embeddings(column_names, embedding_type, items, source)
    chunks = list(embeddings.column("embedding").chunks)
    # The caller passes a table it no longer needs: each chunk is freed once copied.
    del embeddings
    # No name for the matrix here: cluster_matrix frees it after the PCA.
    return cluster_matrix(matrix_from_chunks(items, chunks, embedding_type.list_size), source=source, **options)


def map_points(
    points: np.ndarray, method: str, seed: int, threads: int = 1, sample: np.ndarray | None = None
) -> np.ndarray:
    """:func:`map_items` with its logs: the 2-D map of the cluster figure."""
    start = time.perf_counter()
    with threadpool_limits(limits=max(1, int(threads))):
        xy = map_items(points, method, seed, threads, sample)
    if method == "pca-tsne" and sample is not None:
        log.info(
            "map: t-SNE of the %d sampled items; the other %d placed at the weighted mean of their %d nearest "
            "sampled items",
            len(sample),
            len(xy) - len(sample),
            MAP_NEIGHBOURS,
        )
    elif sample is None:
        log.info("map: %s of all %d items", method, len(xy))
    log.info("%s map took %.1f s", method, time.perf_counter() - start)
    return xy


def items_table(labels: np.ndarray, xy: np.ndarray) -> pa.Table:
    """clusters/items.parquet: item, cluster and map position of every item."""
    return pa.table(
        {
            "item": pa.array(np.arange(len(labels), dtype=np.int32)),
            "cluster": pa.array(np.asarray(labels, dtype=np.int32)),
            "x": pa.array(np.asarray(xy[:, 0], dtype=np.float32)),
            "y": pa.array(np.asarray(xy[:, 1], dtype=np.float32)),
        },
        schema=CLUSTER_ITEMS_SCHEMA,
    )


def log_selected(restarts: pd.DataFrame) -> None:
    selected = restarts.loc[restarts["selected"]].iloc[0]
    log.info(
        "selected restart %d (seed %d), silhouette %.4f", selected["restart"], selected["seed"], selected["silhouette"]
    )


def cluster_matrix(
    matrix: np.ndarray,
    k: int,
    pca_dim: int,
    restarts: int,
    seed: int,
    map_method: str = "pca",
    threads: int = 1,
    source: str | Path = "embeddings.parquet",
    exact_max_items: int | None = None,
    sample_size: int | None = None,
) -> tuple[pd.DataFrame, pa.Table]:
    """The clusters stage in one call: (restarts table, items table with item, cluster, x, y).

    The workflow runs the same steps as separate jobs (the PCA, each restart,
    the selection, the map; rules in workflow/rules/clusters.smk) with the
    same results. ``matrix`` is the float32 (n_items, dim) catalogue in item
    order (see :func:`curatornet.artifacts.read_embeddings_matrix`); it is
    standardised in place. ``exact_max_items`` and ``sample_size``: see the
    module docstring (None: always exact).
    """
    if restarts < 1:
        raise InputError(None, "clusters.restarts", restarts, "need at least one restart")
    start = time.perf_counter()
    points = project_checked(matrix, pca_dim, seed, threads, source)
    del matrix  # the caller passes a matrix it no longer needs: only the PCA points are used from here on
    result = cluster_points(points, k, restarts, seed, threads, exact_max_items, sample_size)
    log.info("clustering of %d items took %.1f s", len(result.labels), time.perf_counter() - start)
    xy = map_points(result.points, map_method, seed, threads, result.sample)
    log_selected(result.restarts)
    return result.restarts, items_table(result.labels, xy)


def project_checked(
    matrix: np.ndarray, pca_dim: int, seed: int, threads: int = 1, source: str | Path = "embeddings.parquet"
) -> np.ndarray:
    """:func:`project` of a catalogue the caller no longer needs (standardised in place), after refusing
    NaN or infinite values with the file's name."""
    row = first_non_finite_row(matrix)
    if row is not None:
        raise InputError(source, "embedding", f"item {row}", "embedding has NaN or infinite values")
    return project(matrix, pca_dim, seed, threads, overwrite=True)


# --------------------------------------------------------------------------- the stage's files between jobs

#: Where a restart's scores travel: the schema metadata of its labels file.
_RESTART_KEY = b"curatornet.restart"


def write_points(points: np.ndarray, path: str | Path) -> None:
    """clusters/points.npy: the standardised PCA points every restart and the map read."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, np.ascontiguousarray(points, dtype=np.float32))


def read_points(path: str | Path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, str(path), "file does not exist")
    try:
        points = np.load(path)
    except (OSError, ValueError) as exc:
        raise InputError(path, None, str(path), f"not a readable .npy file ({exc})") from exc
    if points.ndim != 2 or points.dtype != np.float32:
        raise InputError(path, "points", f"{points.dtype} {points.shape}", "expected a float32 (items, dim) matrix")
    return points


def labels_table(labels: np.ndarray) -> pa.Table:
    return pa.table(
        {"item": pa.array(np.arange(len(labels), dtype=np.int32)), "cluster": pa.array(labels.astype(np.int32))},
        schema=CLUSTER_LABELS_SCHEMA,
    )


def write_restart(result: Restart, path: str | Path) -> None:
    """clusters/restarts/{restart}.parquet: the labels, with the scores in the schema metadata."""
    scores = {**result.row(), "iterations": result.iterations, "seconds": result.seconds}
    table = labels_table(result.labels)
    write_parquet(table.replace_schema_metadata({_RESTART_KEY: json.dumps(scores).encode()}), path)


def read_restart(path: str | Path) -> Restart:
    table = read_table(path, ("item", "cluster"))
    metadata = table.schema.metadata or {}
    if _RESTART_KEY not in metadata:
        raise InputError(path, "metadata", sorted(metadata), "not a restart's labels file (no scores)")
    scores = json.loads(metadata[_RESTART_KEY])
    item = table.column("item").to_numpy()
    if not np.array_equal(item, np.arange(len(item))):
        raise InputError(path, "item", item[:5].tolist(), "items must be 0..N-1 in order")
    labels = table.column("cluster").to_numpy().astype(np.int32)
    return Restart(
        int(scores["restart"]),
        int(scores["seed"]),
        labels,
        float(scores["silhouette"]),
        float(scores["inertia"]),
        int(scores["iterations"]),
        float(scores["seconds"]),
    )


def map_table(xy: np.ndarray) -> pa.Table:
    return pa.table(
        {
            "item": pa.array(np.arange(len(xy), dtype=np.int32)),
            "x": pa.array(np.asarray(xy[:, 0], dtype=np.float32)),
            "y": pa.array(np.asarray(xy[:, 1], dtype=np.float32)),
        },
        schema=CLUSTER_MAP_SCHEMA,
    )


def join_items(assignment: str | Path, map_file: str | Path) -> pa.Table:
    """clusters/items.parquet from the selected restart's labels and the map (both in item order)."""
    labels = read_table(assignment, ("item", "cluster"))
    xy = read_table(map_file, ("item", "x", "y"))
    for path, table in ((assignment, labels), (map_file, xy)):
        item = table.column("item").to_numpy()
        if not np.array_equal(item, np.arange(len(item))):
            raise InputError(path, "item", item[:5].tolist(), "items must be 0..N-1 in order")
    if len(labels) != len(xy):
        raise InputError(map_file, "item", len(xy), f"{len(labels)} items in {assignment} but this many mapped")
    positions = np.column_stack([xy.column("x").to_numpy(), xy.column("y").to_numpy()])
    return items_table(labels.column("cluster").to_numpy(), positions)
