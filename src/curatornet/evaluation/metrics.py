"""Ranking metrics, batched over users (paper section 4.2).

Every function takes matrices with one row per user and one column per item:
``scores`` (higher ranks first), ``candidates`` (bool, the items that user can
be recommended) and ``truth`` (bool, the ground truth, a subset of the
candidates). Items that are not candidates never appear in a ranking.
Ties in top-k lists (and in MRR's full ranking) are broken by item index
(lower first), so results are repeatable.

The metric table (:data:`curatornet.registry.METRICS`) lists what the
evaluation computes per user: this module registers the built-in metrics,
each as a function of a :class:`Ranked` block of users.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from curatornet.registry import METRICS, MetricSpec


def _check(scores: np.ndarray, candidates: np.ndarray, truth: np.ndarray) -> None:
    if scores.shape != candidates.shape or scores.shape != truth.shape:
        raise ValueError(f"shapes differ: scores {scores.shape}, candidates {candidates.shape}, truth {truth.shape}")
    if np.any(truth & ~candidates):
        raise ValueError("a ground-truth item is not among the candidates")


def auc(scores: np.ndarray, candidates: np.ndarray, truth: np.ndarray, block: int = 8_000_000) -> np.ndarray:
    """Per-user AUC: the share of (truth, other candidate) pairs with the truth
    item scored higher, ties counted half. NaN where a user has no truth item
    or no other candidate.

    Ground truths are small (about one item per user), so each truth item is
    compared with its user's whole row at once: the cost is (truth items x
    items), well below sorting every row. ``block`` bounds the comparisons held
    in memory at a time.
    """
    _check(scores, candidates, truth)
    values = np.asarray(scores)
    if np.isnan(values[candidates]).any():
        raise ValueError("a candidate has a NaN score")
    negatives = candidates & ~truth
    n_truth = truth.sum(axis=1)
    n_negative = negatives.sum(axis=1)
    rows, cols = np.nonzero(truth)
    wins = np.zeros(len(rows), dtype=np.float64)
    step = max(1, block // max(1, values.shape[1]))
    for start in range(0, len(rows), step):
        r, c = rows[start : start + step], cols[start : start + step]
        row_values, mine = values[r], values[r, c][:, None]
        others = negatives[r]
        wins[start : start + step] = (others & (row_values < mine)).sum(axis=1) + 0.5 * (
            others & (row_values == mine)
        ).sum(axis=1)
    total = np.bincount(rows, weights=wins, minlength=len(values))
    with np.errstate(invalid="ignore", divide="ignore"):
        result = total / (n_truth * n_negative)
    return np.where((n_truth > 0) & (n_negative > 0), result, np.nan)


def top_k(scores: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    """(n_users, k) column indexes of each user's k best candidates, best first.

    Positions past a user's number of candidates hold -1.
    """
    n_items = scores.shape[1]
    k_eff = min(k, n_items)
    values = np.where(candidates, np.asarray(scores, dtype=np.float64), -np.inf)
    index = np.broadcast_to(np.arange(n_items), values.shape)
    if k_eff < n_items:
        part = np.argpartition(-values, k_eff - 1, axis=1)[:, :k_eff]
        part_values = np.take_along_axis(values, part, axis=1)
        chosen = np.take_along_axis(part, np.lexsort((part, -part_values), axis=1), axis=1)
        # Where the k-th value ties with items left out, argpartition chose
        # among them arbitrarily: sort those rows fully (score desc, index asc).
        kth = part_values.min(axis=1, keepdims=True)
        tied = np.flatnonzero((values >= kth).sum(axis=1) > k_eff)
        if len(tied):
            full = np.lexsort((index[tied], -values[tied]), axis=1)
            chosen[tied] = full[:, :k_eff]
    else:
        chosen = np.lexsort((index, -values), axis=1)
    valid = np.take_along_axis(candidates, chosen, axis=1)
    chosen = np.where(valid, chosen, -1)
    if k_eff < k:
        chosen = np.pad(chosen, ((0, 0), (0, k - k_eff)), constant_values=-1)
    return chosen


def hits(ranking: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(n_users, k) bool: whether the item at each rank is a ground-truth item."""
    safe = np.where(ranking >= 0, ranking, 0)
    return np.take_along_axis(truth, safe, axis=1) & (ranking >= 0)


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def recall_curve(hit: np.ndarray, n_truth: np.ndarray) -> np.ndarray:
    """(n_users, K): Recall@k for k = 1..K (hits in the top k / |truth|)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.cumsum(hit, axis=1) / np.asarray(n_truth, dtype=np.float64)[:, None]


def precision_curve(hit: np.ndarray) -> np.ndarray:
    """(n_users, K): Precision@k for k = 1..K (hits in the top k / k)."""
    return np.cumsum(hit, axis=1) / np.arange(1, hit.shape[1] + 1, dtype=np.float64)


def ndcg_curve(hit: np.ndarray, n_truth: np.ndarray) -> np.ndarray:
    """(n_users, K): nDCG@k for k = 1..K with binary gains; the ideal DCG@k
    places min(|truth|, k) hits at the top."""
    k_max = hit.shape[1]
    discounts = _discounts(k_max)
    dcg = np.cumsum(hit * discounts, axis=1)
    ideal_prefix = np.concatenate([[0.0], np.cumsum(discounts)])
    n_ideal = np.minimum(np.asarray(n_truth)[:, None], np.arange(1, k_max + 1)[None, :])
    ideal = ideal_prefix[n_ideal]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ideal > 0, dcg / np.where(ideal > 0, ideal, 1.0), np.nan)


def ndcg_paper_curve(hit: np.ndarray) -> np.ndarray:
    """(n_users, K): nDCG@k as the paper's research code computed it, for k = 1..K.

    DCG@k is divided by the ideal DCG of the number of *hits* in the top k
    instead of min(|truth|, k), so a single hit at any rank scores less than
    one only through its own position, and a user with one hit at rank 1
    scores 1 whatever the size of the ground truth. With no hit it is 0. Kept
    beside the standard form only to compare with the paper's Table 2 like for
    like; it agrees with the standard form for the Oracle.
    """
    k_max = hit.shape[1]
    discounts = _discounts(k_max)
    dcg = np.cumsum(hit * discounts, axis=1)
    ideal_prefix = np.concatenate([[0.0], np.cumsum(discounts)])
    ideal = ideal_prefix[np.cumsum(hit, axis=1)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ideal > 0, dcg / np.where(ideal > 0, ideal, 1.0), 0.0)


def mrr(scores: np.ndarray, candidates: np.ndarray, truth: np.ndarray, block: int = 8_000_000) -> np.ndarray:
    """Per-user reciprocal rank of the first ground-truth item in the full ranking of the candidates.

    The rank of a truth item is one plus the candidates ranked above it: scored
    higher, or scored the same with a lower item index (the tie rule of
    :func:`top_k`). NaN where a user has no truth item. Like :func:`auc`, each
    truth item is compared with its user's whole row.
    """
    _check(scores, candidates, truth)
    values = np.asarray(scores)
    if np.isnan(values[candidates]).any():
        raise ValueError("a candidate has a NaN score")
    rows, cols = np.nonzero(truth)
    ranks = np.zeros(len(rows), dtype=np.int64)
    index = np.arange(values.shape[1])
    step = max(1, block // max(1, values.shape[1]))
    for start in range(0, len(rows), step):
        r, c = rows[start : start + step], cols[start : start + step]
        row_values, mine = values[r], values[r, c][:, None]
        above = (row_values > mine) | ((row_values == mine) & (index[None, :] < c[:, None]))
        ranks[start : start + step] = 1 + (candidates[r] & above).sum(axis=1)
    best = np.full(len(values), np.iinfo(np.int64).max)
    np.minimum.at(best, rows, ranks)
    has_truth = truth.any(axis=1)
    return np.where(has_truth, 1.0 / np.where(has_truth, best, 1), np.nan)


# --------------------------------------------------------------------------- the metric table


@dataclass
class Ranked:
    """One block of users as every metric sees it: their scores over all items, their candidates and
    ground truth (bool masks), and, computed when first asked for, each user's ``depth`` best
    candidates (:func:`top_k`), the hits among them and the size of the ground truth."""

    scores: np.ndarray
    candidates: np.ndarray
    truth: np.ndarray
    depth: int

    @cached_property
    def ranking(self) -> np.ndarray:
        return top_k(self.scores, self.candidates, self.depth)

    @cached_property
    def hits(self) -> np.ndarray:
        return hits(self.ranking, self.truth)

    @cached_property
    def n_truth(self) -> np.ndarray:
        return self.truth.sum(axis=1)


def _auc(ranked: Ranked) -> np.ndarray:
    return auc(ranked.scores, ranked.candidates, ranked.truth)


def _mrr(ranked: Ranked) -> np.ndarray:
    return mrr(ranked.scores, ranked.candidates, ranked.truth)


def _recall(ranked: Ranked) -> np.ndarray:
    return recall_curve(ranked.hits, ranked.n_truth)


def _precision(ranked: Ranked) -> np.ndarray:
    return precision_curve(ranked.hits)


def _ndcg(ranked: Ranked) -> np.ndarray:
    return ndcg_curve(ranked.hits, ranked.n_truth)


def _ndcg_paper(ranked: Ranked) -> np.ndarray:
    return ndcg_paper_curve(ranked.hits)


# Table 2's metrics (section 4.2), then MRR; AUC first: model selection and the paired tests read it.
METRICS.register(MetricSpec("auc", "AUC", _auc))
METRICS.register(MetricSpec("mrr", "MRR", _mrr))
METRICS.register(MetricSpec("recall", "R@{k}", _recall, cutoff=True))
METRICS.register(MetricSpec("precision", "P@{k}", _precision, cutoff=True))
METRICS.register(MetricSpec("ndcg", "nDCG@{k}", _ndcg, cutoff=True))
METRICS.register(MetricSpec("ndcg_paper", "nDCG@{k} (paper)", _ndcg_paper, cutoff=True))
