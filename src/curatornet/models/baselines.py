"""Recommenders that need no training: VisRank, Random and Oracle (paper section 4.3).

All three implement :class:`curatornet.models.base.Scorer`, so the evaluation
treats them exactly like the trained models.
"""

from __future__ import annotations

import numpy as np

from curatornet.errors import InputError
from curatornet.models.base import Queries

#: Upper bound on the floats of one similarity block (about 128 MB in float32).
_BLOCK_FLOATS = 32_000_000
AGGREGATES = ("max", "topk_mean")


def _unit_rows(embeddings: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero (their cosine is 0)."""
    matrix = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0).astype(np.float32)


class VisRank:
    """Content-based ranking by cosine similarity to the profile (equation 15).

    ``aggregate='max'``: score(u, i) = max over profile items j of cos(f_i, f_j).
    ``aggregate='topk_mean'``: the mean of the ``top_k`` largest similarities
    (all of them when the profile is shorter). An empty profile scores 0.
    """

    name = "visrank"

    def __init__(self, embeddings: np.ndarray, aggregate: str = "max", top_k: int = 2):
        if aggregate not in AGGREGATES:
            raise InputError(None, "evaluation.visrank.aggregate", aggregate, f"must be one of {AGGREGATES}")
        if top_k < 1:
            raise InputError(None, "evaluation.visrank.top_k", top_k, "must be at least 1")
        self.unit = _unit_rows(embeddings)
        self.aggregate = aggregate
        self.top_k = int(top_k)

    def score(self, queries: Queries, items: np.ndarray) -> np.ndarray:
        items = np.asarray(items, dtype=np.int64)
        candidates = self.unit[items]  # (n_items, dim)
        out = np.zeros((len(queries), len(items)), dtype=np.float32)
        profiles = [np.unique(np.asarray(p, dtype=np.int64)) for p in queries.profiles]
        lengths = np.array([len(p) for p in profiles], dtype=np.int64)
        # Queries are processed in groups whose similarity block stays bounded:
        # one matmul per group against the concatenated profiles.
        per_group = max(1, _BLOCK_FLOATS // max(1, len(items)))
        start = 0
        while start < len(queries):
            stop = start
            width = 0
            while stop < len(queries) and (stop == start or width + lengths[stop] <= per_group):
                width += lengths[stop]
                stop += 1
            self._score_group(profiles[start:stop], lengths[start:stop], candidates, out[start:stop])
            start = stop
        return out

    def _score_group(self, profiles, lengths, candidates, out) -> None:
        present = lengths > 0
        if not present.any():
            return
        flat = np.concatenate([p for p in profiles if len(p)])
        sims = candidates @ self.unit[flat].T  # (n_items, total profile length)
        offsets = np.concatenate([[0], np.cumsum(lengths[present])[:-1]])
        rows = np.flatnonzero(present)
        if self.aggregate == "max":
            out[rows] = np.maximum.reduceat(sims, offsets, axis=1).T
            return
        for row, begin, size in zip(rows, offsets, lengths[present]):
            block = sims[:, begin : begin + size]
            k = min(self.top_k, size)
            top = np.partition(block, size - k, axis=1)[:, size - k :]
            out[row] = top.mean(axis=1)


class RandomScorer:
    """Uniform random scores; the same seed gives the same scores."""

    name = "random"

    def __init__(self, seed: int = 7):
        self.seed = int(seed)

    def score(self, queries: Queries, items: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        return rng.random((len(queries), len(items)), dtype=np.float32)


class Oracle:
    """A perfect ranking: the ground truth first (score 1), every other item 0."""

    name = "oracle"

    def score(self, queries: Queries, items: np.ndarray) -> np.ndarray:
        if queries.truth is None:
            raise InputError(None, "queries.truth", None, "the Oracle needs the ground truth of every query")
        items = np.asarray(items)
        out = np.zeros((len(queries), len(items)), dtype=np.float32)
        for row, truth in enumerate(queries.truth):
            out[row] = np.isin(items, truth)
        return out
