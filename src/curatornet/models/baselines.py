"""Recommenders that need no training: VisRank, Random and Oracle (paper section 4.3), and MostPopular.

All of them implement :class:`curatornet.models.base.Scorer`, so the evaluation
treats them exactly like the trained models; this module registers them in
the baseline registry (:data:`curatornet.registry.BASELINES`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from curatornet.errors import InputError
from curatornet.models.base import Queries
from curatornet.registry import BASELINES, BaselineSpec

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


class MostPopular:
    """Items ranked by how often they were bought in the training log before the query's instant.

    Only purchases of the ``train`` split strictly before a query's ``time``
    count, so nothing from the query's own basket or later leaks in (a query
    without a time counts the whole training log). Ties go by item index,
    which is the order of the item ids: scores are each item's rank among the
    scored items (a strict order, so the AUC never counts a tie).
    """

    name = "mostpopular"

    def __init__(self, purchases: pd.DataFrame, n_items: int, source: str = "purchases.parquet"):
        for column in ("item", "time", "split"):
            if column not in purchases.columns:
                raise InputError(source, column, list(purchases.columns), "required column is missing")
        train = purchases[purchases["split"].astype(str) == "train"]
        times = pd.to_datetime(train["time"]).to_numpy().astype("datetime64[ms]").astype(np.int64)
        order = np.argsort(times, kind="stable")
        self.times = times[order]
        self.items = train["item"].to_numpy(dtype=np.int64)[order]
        if len(self.items) and (self.items.min() < 0 or self.items.max() >= n_items):
            raise InputError(source, "item", int(self.items.max()), f"item index outside 0..{n_items - 1}")
        self.n_items = int(n_items)

    def score(self, queries: Queries, items: np.ndarray) -> np.ndarray:
        items = np.asarray(items, dtype=np.int64)
        out = np.empty((len(queries), len(items)), dtype=np.float32)
        if queries.times is None:
            seen = np.full(len(queries), len(self.items))
        else:
            seen = np.searchsorted(self.times, np.asarray(queries.times, dtype=np.int64), side="left")
        counts = np.zeros(self.n_items, dtype=np.int64)
        counted = 0
        # Queries in time order: the counts only grow, one pass over the log.
        for row in np.argsort(seen, kind="stable"):
            if seen[row] > counted:
                np.add.at(counts, self.items[counted : seen[row]], 1)
                counted = seen[row]
            # More purchases first, then the lower item index; the score is the item's rank from the bottom.
            key = counts[items] * self.n_items + (self.n_items - 1 - items)
            rank = np.empty(len(items), dtype=np.float32)
            rank[np.argsort(key, kind="stable")] = np.arange(len(items), dtype=np.float32)
            out[row] = rank
        return out


# --------------------------------------------------------------------------- registration


def _visrank(embeddings: np.ndarray, purchases: pd.DataFrame | None, settings: Mapping[str, Any]) -> VisRank:
    visrank = settings.get("visrank", {})
    return VisRank(embeddings, visrank.get("aggregate", "max"), visrank.get("top_k", 2))


def _random(embeddings: np.ndarray, purchases: pd.DataFrame | None, settings: Mapping[str, Any]) -> RandomScorer:
    return RandomScorer(settings["random_seed"])


def _oracle(embeddings: np.ndarray, purchases: pd.DataFrame | None, settings: Mapping[str, Any]) -> Oracle:
    return Oracle()


def _mostpopular(embeddings: np.ndarray, purchases: pd.DataFrame | None, settings: Mapping[str, Any]) -> MostPopular:
    return MostPopular(purchases, len(embeddings))


BASELINES.register(BaselineSpec(VisRank.name, "VisRank", _visrank, reference=True, batch=True))
BASELINES.register(
    BaselineSpec(
        RandomScorer.name,
        "Random",
        _random,
        settings=lambda evaluation: {"random_seed": int(evaluation["random_seed"])},
        bound="lower",
    )
)
BASELINES.register(BaselineSpec(Oracle.name, "Oracle", _oracle, bound="upper"))
BASELINES.register(BaselineSpec(MostPopular.name, "MostPopular", _mostpopular, purchases=True))
