"""Maximum inner product search over item vectors: exact (NumPy) or approximate (faiss).

Both indexes hold (id, vector) pairs, take new items and removals, and answer
a block of query vectors at once with the ``k`` best ids per query, leaving
out per-query exclusions (a user's own purchases, the profile's items). Ids
must be added in increasing order (item indexes are).

The approximate index (:class:`FaissIndex`) is faiss' inverted file (IVF)
with the inner-product metric: k-means cells over the item vectors; a query
scans the cells whose centroids have the largest inner product with it, with
product-quantised codes, and re-ranks the best candidates exactly. faiss-cpu
is an optional dependency (``pip install -e .[index]``).
"""

from __future__ import annotations

import threading
from typing import Protocol

import numpy as np

from curatornet.errors import InputError
from curatornet.serving.models import GrowingMatrix

INDEX_KINDS = ("exact", "faiss")


class Exclusions:
    """Pairs (query row, item id) to leave out of the results."""

    def __init__(self, rows: np.ndarray | None = None, ids: np.ndarray | None = None):
        self.rows = np.zeros(0, np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
        self.ids = np.zeros(0, np.int64) if ids is None else np.asarray(ids, dtype=np.int64)

    @classmethod
    def for_one_query(cls, ids: np.ndarray) -> Exclusions:
        ids = np.asarray(ids, dtype=np.int64)
        return cls(np.zeros(len(ids), np.int64), ids)

    def per_query(self, n_queries: int) -> np.ndarray:
        return np.bincount(self.rows, minlength=n_queries)[:n_queries]


class ItemIndex(Protocol):
    kind: str

    def __len__(self) -> int: ...

    def train(self, vectors: np.ndarray) -> None: ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> None: ...

    def search(
        self, queries: np.ndarray, k: int, exclude: Exclusions | None = None, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...


def sorted_top_k(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best columns of each row by score, ties by id; -inf scores become id -1."""
    k = min(k, scores.shape[1])
    if k == 0:
        return np.zeros((len(scores), 0), np.float32), np.zeros((len(scores), 0), np.int64)
    if k < scores.shape[1]:
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        top = np.broadcast_to(np.arange(k), scores.shape)
    top_scores = np.take_along_axis(scores, top, axis=1)
    top_ids = ids[top]
    order = np.lexsort((top_ids, -top_scores), axis=1)
    top_scores = np.take_along_axis(top_scores, order, axis=1)
    top_ids = np.where(np.isfinite(top_scores), np.take_along_axis(top_ids, order, axis=1), -1)
    return top_scores.astype(np.float32, copy=False), top_ids


class ExactIndex:
    """Every vector scored: one matrix product per block of queries."""

    kind = "exact"

    def __init__(self, dim: int):
        self.dim = int(dim)
        self._vectors = GrowingMatrix(np.zeros((0, self.dim), np.float32))
        self._ids = GrowingMatrix(np.zeros(0, np.int64))
        self._active = GrowingMatrix(np.zeros(0, bool))
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def train(self, vectors: np.ndarray) -> None:
        """Nothing to learn."""

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        known = self._ids.view()
        if len(ids) and ((np.diff(ids) <= 0).any() or (len(known) and ids[0] <= known[-1])):
            raise InputError(None, "ids", ids[:5].tolist(), "ids must be added in increasing order")
        # Rows first, the ids that make them visible last (see GrowingMatrix).
        self._vectors.append(np.asarray(vectors, dtype=np.float32).reshape(len(ids), self.dim))
        self._active.append(np.ones(len(ids), bool))
        self._ids.append(ids)
        self._count += len(ids)

    def remove(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        known = self._ids.view()
        active = self._active.view()[: len(known)]
        rows = np.searchsorted(known, ids)
        found = rows < len(known)
        found[found] = known[rows[found]] == ids[found]
        rows = np.unique(rows[found])
        rows = rows[active[rows]]
        active[rows] = False
        self._count -= len(rows)

    def search(self, queries: np.ndarray, k: int, exclude: Exclusions | None = None, allowed: np.ndarray | None = None):
        """The ``k`` best ids per query. ``allowed`` (bool by id) replaces the index's own record
        of removals: ids it marks False, or beyond its length, are left out (a caller's snapshot)."""
        ids = self._ids.view()
        n = len(ids)
        vectors = self._vectors.view()[:n]
        scores = np.asarray(queries, dtype=np.float32) @ vectors.T
        scores[:, ~self._candidates(ids, allowed)] = -np.inf
        if exclude is not None and len(exclude.ids):
            rows = np.searchsorted(ids, exclude.ids)
            found = rows < n
            found[found] = ids[rows[found]] == exclude.ids[found]
            scores[exclude.rows[found], rows[found]] = -np.inf
        return sorted_top_k(scores, ids, k)

    def _candidates(self, ids: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
        if allowed is None:
            return self._active.view()[: len(ids)]
        inside = ids < len(allowed)
        inside[inside] = allowed[ids[inside]]
        return inside


#: k-means of the IVF cells trains on at most this many vectors per cell (a seeded sample).
TRAIN_PER_LIST = 100


def default_lists(n: int) -> int:
    """IVF cells for n vectors: about √n, with at least 39 training points per cell (faiss' minimum)."""
    return int(max(1, min(round(np.sqrt(n)), n // 39)))


def import_faiss():
    try:
        import faiss
    except ImportError as exc:
        raise InputError(
            None, "--index", "faiss", "faiss is not installed: pip install -e .[index] (or faiss-cpu)"
        ) from exc
    return faiss


class FaissIndex:
    """An approximate inner-product index of faiss: inverted file, product-quantised scan, exact re-ranking.

    ``encoding='pq'`` (default) is faiss' ``IVF{n_lists},PQ{d/2}x4fs,RFlat``:
    the vectors are grouped into ``n_lists`` k-means cells; a query scans the
    ``n_probe`` cells whose centroids have the largest inner product with it,
    scoring their items with 4-bit product-quantisation codes (two dimensions
    per code, SIMD "fast scan"), and re-ranks the ``k_factor``·k best by their
    exact inner product. ``encoding='flat'`` (``IVF{n_lists},Flat``) scores the
    scanned items exactly, slower. Defaults: :func:`default_lists` cells, half
    of them probed (at least 16), ``k_factor`` 50: what reached recall@20 of
    0.95 on a million tower vectors in benchmarks/bench_index.py (the top items
    of a query are spread over many cells, so fewer probes lose recall fast).

    faiss numbers items 0, 1, ... in the order they are added; this class maps
    them to the caller's ids, and a removal only marks the item, whose results
    are then dropped (searches ask for more results until ``k`` are left, so
    removals and exclusions never shorten a list). A lock serialises searches
    with additions and removals, which faiss does not allow to overlap.
    """

    kind = "faiss"

    def __init__(
        self,
        dim: int,
        n_lists: int | None = None,
        n_probe: int | None = None,
        k_factor: int = 50,
        encoding: str = "pq",
        threads: int | None = None,
    ):
        self.faiss = import_faiss()
        if encoding not in ("pq", "flat"):
            raise InputError(None, "encoding", encoding, "expected 'pq' or 'flat'")
        if threads is not None:
            self.faiss.omp_set_num_threads(int(threads))
        self.dim = int(dim)
        self.n_lists, self.n_probe, self.k_factor, self.encoding = n_lists, n_probe, int(k_factor), encoding
        self._index = None
        self._ids = GrowingMatrix(np.zeros(0, np.int64))  # caller's id by faiss' number
        self._active = GrowingMatrix(np.zeros(0, bool))
        self._row = {}  # caller's id -> faiss' number
        self._removed = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._ids) - self._removed

    def describe(self) -> str:
        return f"{self.spec} nprobe={self.n_probe}" + (f" k_factor={self.k_factor}" if self.encoding == "pq" else "")

    @property
    def spec(self) -> str:
        if self.encoding == "flat":
            return f"IVF{self.n_lists},Flat"
        codes = self.dim // 2 if self.dim % 2 == 0 else self.dim
        return f"IVF{self.n_lists},PQ{codes}x4fs,RFlat"

    def _build(self, vectors: np.ndarray) -> None:
        faiss = self.faiss
        self.n_lists = int(self.n_lists or default_lists(len(vectors)))
        index = faiss.index_factory(self.dim, self.spec, faiss.METRIC_INNER_PRODUCT)
        if len(vectors) > TRAIN_PER_LIST * self.n_lists:
            sample = np.random.default_rng(0).choice(len(vectors), TRAIN_PER_LIST * self.n_lists, replace=False)
            vectors = vectors[np.sort(sample)]
        index.train(vectors)
        self._index, self._ivf = index, faiss.extract_index_ivf(index)
        self._apply_settings()

    def _apply_settings(self) -> None:
        self.n_probe = int(min(self.n_lists, self.n_probe or max(16, self.n_lists // 2)))
        self._ivf.nprobe = self.n_probe
        if self.encoding == "pq":
            self._index.k_factor = float(self.k_factor)

    def set_probes(self, n_probe: int, k_factor: int | None = None) -> None:
        """Cells scanned per query (and candidates re-ranked per result): more is slower and closer to exact."""
        with self._lock:
            self.n_probe = int(n_probe)
            self.k_factor = int(k_factor or self.k_factor)
            if self._index is not None:
                self._apply_settings()

    def train(self, vectors: np.ndarray) -> None:
        """Learn the cells and codes from ``vectors`` (once; later calls do nothing)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        with self._lock:
            if self._index is None:
                if len(vectors) == 0:
                    raise InputError(None, "items", 0, "the faiss index needs items to train on")
                self._build(vectors)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add items; the first call trains the index on its vectors unless :meth:`train` was called."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        ids = np.asarray(ids, dtype=np.int64)
        with self._lock:
            if self._index is None:
                if len(vectors) == 0:
                    raise InputError(None, "items", 0, "the faiss index needs items to train on")
                self._build(vectors)
            first = len(self._ids)
            self._index.add(vectors)
            self._active.append(np.ones(len(ids), bool))
            self._ids.append(ids)
            self._row.update(zip(ids.tolist(), range(first, first + len(ids))))

    def remove(self, ids: np.ndarray) -> None:
        with self._lock:
            active = self._active.view()
            for item in np.asarray(ids, dtype=np.int64).tolist():
                row = self._row.get(item)
                if row is not None and active[row]:
                    active[row] = False
                    self._removed += 1

    def search(self, queries: np.ndarray, k: int, exclude: Exclusions | None = None, allowed: np.ndarray | None = None):
        """The ``k`` best ids per query; ``allowed`` as in :meth:`ExactIndex.search`."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        n_queries = len(queries)
        extra = int(exclude.per_query(n_queries).max()) if exclude is not None and len(exclude.ids) else 0
        with self._lock:
            total = len(self._ids)
            depth = min(k + extra + min(self._removed, k), total)
            while True:
                if depth == 0:
                    return np.zeros((n_queries, 0), np.float32), np.zeros((n_queries, 0), np.int64)
                scores, rows = self._index.search(queries, depth)
                found = rows >= 0
                keep = found.copy()
                keep[found] = self._active.view()[rows[found]]
                ids = np.where(found, self._ids.view()[np.maximum(rows, 0)], -1)
                if allowed is not None:  # the caller's snapshot decides, not the index's removals
                    inside = found & (ids >= 0) & (ids < len(allowed))
                    keep = np.zeros_like(found)
                    keep[inside] = allowed[ids[inside]]
                if extra:
                    span = int(max(ids.max(), exclude.ids.max())) + 1
                    keep &= ~np.isin(np.arange(n_queries)[:, None] * span + ids, exclude.rows * span + exclude.ids)
                # Enough left in every row, or nothing more to ask for (an approximate
                # index may return fewer than ``depth`` even then).
                if keep.sum(axis=1).min() >= min(k, len(self)) or depth >= total or found.sum(axis=1).min() < depth:
                    break
                depth = min(2 * depth, total)
        # The first k kept columns of each row, moved to the front in order.
        position = np.cumsum(keep, axis=1) - 1
        keep &= position < k
        width = min(k, depth)
        out_scores = np.full((n_queries, width), -np.inf, np.float32)
        out_ids = np.full((n_queries, width), -1, np.int64)
        where_rows, where_cols = np.nonzero(keep)
        out_scores[where_rows, position[where_rows, where_cols]] = scores[where_rows, where_cols]
        out_ids[where_rows, position[where_rows, where_cols]] = ids[where_rows, where_cols]
        return out_scores, out_ids


def make_index(kind: str, dim: int, **options) -> ExactIndex | FaissIndex:
    if kind == "exact":
        return ExactIndex(dim)
    if kind == "faiss":
        return FaissIndex(dim, **options)
    raise InputError(None, "--index", kind, f"unknown index (one of {', '.join(INDEX_KINDS)})")
