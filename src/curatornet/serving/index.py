"""Maximum inner product search over item vectors: exact (NumPy) or approximate (faiss).

Both indexes hold (id, vector) pairs, take new items and removals, and answer
a block of query vectors at once with the ``k`` best ids per query, leaving
out per-query exclusions (a user's own purchases, the profile's items). Ids
must be added in increasing order (item indexes are).

The approximate index is faiss' inverted file (IVF) with the inner-product
metric: k-means cells over the item vectors, each query scans the ``n_probe``
cells whose centroids have the largest inner product with it. faiss-cpu is an
optional dependency (``pip install -e .[index]``).
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
        self, queries: np.ndarray, k: int, exclude: Exclusions | None = None
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

    def search(self, queries: np.ndarray, k: int, exclude: Exclusions | None = None):
        ids = self._ids.view()
        n = len(ids)
        vectors, active = self._vectors.view()[:n], self._active.view()[:n]
        scores = np.asarray(queries, dtype=np.float32) @ vectors.T
        scores[:, ~active] = -np.inf
        if exclude is not None and len(exclude.ids):
            rows = np.searchsorted(ids, exclude.ids)
            found = rows < n
            found[found] = ids[rows[found]] == exclude.ids[found]
            scores[exclude.rows[found], rows[found]] = -np.inf
        return sorted_top_k(scores, ids, k)


def default_lists(n: int) -> int:
    """IVF cells for n vectors: about 4·√n, with at least 39 training points per cell (faiss' minimum)."""
    return int(max(1, min(round(4 * np.sqrt(n)), n // 39)))


def import_faiss():
    try:
        import faiss
    except ImportError as exc:
        raise InputError(
            None, "--index", "faiss", "faiss is not installed: pip install -e .[index] (or faiss-cpu)"
        ) from exc
    return faiss


class FaissIndex:
    """faiss IVF-Flat with the inner-product metric (approximate).

    ``n_lists`` cells (default :func:`default_lists`), ``n_probe`` of them
    scanned per query (default: an eighth of the cells, at least 16). Trained
    on the vectors of the first :meth:`add`. Searches ask for ``k`` plus the
    largest number of exclusions of a query in the block and drop the
    excluded ids. A lock serialises searches with additions and removals,
    which faiss does not allow to overlap.
    """

    kind = "faiss"

    def __init__(self, dim: int, n_lists: int | None = None, n_probe: int | None = None, threads: int | None = None):
        self.faiss = import_faiss()
        if threads is not None:
            self.faiss.omp_set_num_threads(int(threads))
        self.dim = int(dim)
        self.n_lists, self.n_probe = n_lists, n_probe
        self._index = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    def _build(self, vectors: np.ndarray) -> None:
        faiss = self.faiss
        n_lists = self.n_lists or default_lists(len(vectors))
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFFlat(quantizer, self.dim, n_lists, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = int(min(n_lists, self.n_probe or max(16, n_lists // 8)))
        self.n_lists, self.n_probe = n_lists, int(index.nprobe)
        self._quantizer, self._index = quantizer, index  # the index does not own its quantizer

    def train(self, vectors: np.ndarray) -> None:
        """Learn the cells from ``vectors`` (once; later calls do nothing)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        with self._lock:
            if self._index is None:
                if len(vectors) == 0:
                    raise InputError(None, "items", 0, "the faiss index needs items to train on")
                self._build(vectors)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add items; the first call trains the index on its vectors unless :meth:`train` was called."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        with self._lock:
            if self._index is None:
                if len(vectors) == 0:
                    raise InputError(None, "items", 0, "the faiss index needs items to train on")
                self._build(vectors)
            self._index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> None:
        with self._lock:
            if self._index is not None:
                self._index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64))

    def search(self, queries: np.ndarray, k: int, exclude: Exclusions | None = None):
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        n_queries = len(queries)
        extra = int(exclude.per_query(n_queries).max()) if exclude is not None and len(exclude.ids) else 0
        with self._lock:
            depth = min(k + extra, len(self))
            if depth == 0:
                return np.zeros((n_queries, 0), np.float32), np.zeros((n_queries, 0), np.int64)
            scores, ids = self._index.search(queries, depth)
        keep = ids >= 0
        if extra:
            span = int(max(ids.max(), exclude.ids.max())) + 1
            excluded = np.isin(np.arange(n_queries)[:, None] * span + ids, exclude.rows * span + exclude.ids)
            keep &= ~excluded
        # The first k kept columns of each row, moved to the front in order.
        position = np.cumsum(keep, axis=1) - 1
        keep &= position < k
        width = min(k, depth)
        out_scores = np.full((n_queries, width), -np.inf, np.float32)
        out_ids = np.full((n_queries, width), -1, np.int64)
        rows, cols = np.nonzero(keep)
        out_scores[rows, position[rows, cols]] = scores[rows, cols]
        out_ids[rows, position[rows, cols]] = ids[rows, cols]
        return out_scores, out_ids


def make_index(kind: str, dim: int, **options) -> ExactIndex | FaissIndex:
    if kind == "exact":
        return ExactIndex(dim)
    if kind == "faiss":
        return FaissIndex(dim, **options)
    raise InputError(None, "--index", kind, f"unknown index (one of {', '.join(INDEX_KINDS)})")
