"""Ranking metrics against hand-computed cases and a brute-force pairwise AUC."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from curatornet.evaluation import metrics
from curatornet.evaluation.evaluate import evaluate_scorer, summarise, to_table
from curatornet.evaluation.protocol import Cases
from curatornet.models.base import Queries


def _brute_force_auc(scores, candidates, truth):
    out = []
    for s, c, t in zip(scores, candidates, truth):
        positives = [s[i] for i in range(len(s)) if c[i] and t[i]]
        negatives = [s[i] for i in range(len(s)) if c[i] and not t[i]]
        pairs = list(itertools.product(positives, negatives))
        if not pairs:
            out.append(np.nan)
            continue
        out.append(sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs))
    return np.array(out)


def test_auc_hand_computed():
    scores = np.array([[0.9, 0.5, 0.5, 0.1, 0.7]])
    candidates = np.array([[True, True, True, True, False]])
    truth = np.array([[False, True, False, False, False]])
    # truth item 1 (0.5) vs others 0 (0.9: lost), 2 (0.5: tie), 3 (0.1: won); 4 is no candidate.
    assert metrics.auc(scores, candidates, truth)[0] == pytest.approx(1.5 / 3)
    truth2 = np.array([[True, False, False, True, False]])
    # truth {0: 0.9, 3: 0.1} vs {1, 2}: 0 wins twice, 3 loses twice -> 2/4.
    assert metrics.auc(scores, candidates, truth2)[0] == pytest.approx(0.5)


def test_auc_matches_brute_force_with_ties_and_masks():
    rng = np.random.default_rng(3)
    n_users, n_items = 40, 30
    scores = rng.integers(0, 6, size=(n_users, n_items)).astype(np.float32)  # many ties
    scores[0, :] = -np.inf  # infinite scores on candidates stay ordered correctly
    candidates = rng.random((n_users, n_items)) < 0.7
    truth = candidates & (rng.random((n_users, n_items)) < 0.2)
    truth[1] = False  # no truth -> NaN
    truth[2] = candidates[2]  # no other candidate -> NaN
    got = metrics.auc(scores, candidates, truth)
    want = _brute_force_auc(scores, candidates, truth)
    np.testing.assert_allclose(got, want, equal_nan=True)
    assert np.isnan(got[1]) and np.isnan(got[2])


def test_top_k_breaks_ties_by_index_and_skips_non_candidates():
    scores = np.array([[0.2, 0.9, 0.2, 0.9, 0.5, 1.0]])
    candidates = np.array([[True, True, True, True, True, False]])
    assert metrics.top_k(scores, candidates, 4).tolist() == [[1, 3, 4, 0]]
    assert metrics.top_k(scores, candidates, 7).tolist() == [[1, 3, 4, 0, 2, -1, -1]]


def test_recall_precision_ndcg_hand_computed():
    # Ranking hits at ranks 2 and 4; three truth items.
    hit = np.array([[False, True, False, True, False]])
    n_truth = np.array([3])
    assert metrics.recall_curve(hit, n_truth)[0, 3] == pytest.approx(2 / 3)
    assert metrics.precision_curve(hit)[0, 3] == pytest.approx(2 / 4)
    dcg = 1 / np.log2(3) + 1 / np.log2(5)
    ideal = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    assert metrics.ndcg_curve(hit, n_truth)[0, 3] == pytest.approx(dcg / ideal)
    # With k = 2 the ideal DCG places min(3, 2) = 2 hits.
    assert metrics.ndcg_curve(hit, n_truth)[0, 1] == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)))
    curve = metrics.recall_curve(hit, n_truth)[0]
    np.testing.assert_allclose(curve, [0, 1 / 3, 1 / 3, 2 / 3, 2 / 3])


class _FixedScorer:
    """Scores given as a matrix over all items, row per query."""

    name = "fixed"

    def __init__(self, matrix):
        self.matrix = np.asarray(matrix, dtype=np.float32)

    def score(self, queries: Queries, items: np.ndarray) -> np.ndarray:
        return self.matrix[: len(queries)][:, items]


def test_mrr_is_the_reciprocal_rank_of_the_first_truth_item_in_the_full_ranking():
    scores = np.array([[0.9, 0.5, 0.5, 0.1, 0.7, 0.3], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [1, 1, 1, 1, 1, 1]])
    candidates = np.ones_like(scores, dtype=bool)
    candidates[0, 0] = False  # not in the inventory: it never ranks
    truth = np.zeros_like(candidates)
    truth[0, [2, 3]] = True  # ranking 4, 1, 2 (the tie with 1 goes to the lower index), 5, 3: first truth third
    truth[1, 0] = True  # last of six
    truth[2, 4] = True  # all tied: by index, fifth
    np.testing.assert_allclose(metrics.mrr(scores, candidates, truth), [1 / 3, 1 / 6, 1 / 5])
    # The full ranking agrees with top_k's (same tie rule), well beyond any cut-off.
    for row in range(3):
        ranking = metrics.top_k(scores[row : row + 1], candidates[row : row + 1], 6)[0].tolist()
        first = min(ranking.index(i) for i in np.flatnonzero(truth[row]))
        assert metrics.mrr(scores[row : row + 1], candidates[row : row + 1], truth[row : row + 1])[0] == 1 / (1 + first)
    assert np.isnan(metrics.mrr(scores[:1], candidates[:1], np.zeros_like(truth[:1])))[0]


def test_evaluate_scorer_per_user_and_summary():
    cases = Cases(
        users=np.array([5, 6], dtype=np.int32),
        user_ids=np.array(["a", "b"], dtype=object),
        times=np.array([10, 20], dtype=np.int64),
        profiles=[np.array([0], dtype=np.int32), np.array([1], dtype=np.int32)],
        truth=[np.array([2], dtype=np.int32), np.array([3, 4], dtype=np.int32)],
        available_from=np.array([0, 0, 0, 15, 0], dtype=np.int64),  # item 3 appears at 15
        removed_after=np.array([5, 2**62, 2**62, 2**62, 2**62], dtype=np.int64),  # item 0 sold at 5
    )
    scores = [[9, 8, 7, 6, 5], [1, 2, 3, 4, 5]]
    key = {"method": "curatornet", "sampling": "guidelines", "l2": "0"}
    result = evaluate_scorer(key, _FixedScorer(scores), cases, ks=[1, 2], curve_max_k=3, top_n=2)
    row_a, row_b = (row for _, row in result.per_user.iterrows())
    # user a: candidates 1, 2, 4 (0 sold, 3 not uploaded); ranking 1, 2, 4; truth 2.
    assert row_a["n_candidates"] == 3 and row_a["auc"] == pytest.approx(0.5) and row_a["mrr"] == pytest.approx(0.5)
    assert row_a["precision@1"] == 0.0 and row_a["recall@2"] == 1.0
    assert result.top.query("user == 5")["item"].tolist() == [1, 2]
    # user b: candidates 1..4; ranking 4, 3, 2, 1; truth {3, 4} both at the top.
    assert row_b["auc"] == 1.0 and row_b["n_candidates"] == 4 and row_b["ndcg@2"] == pytest.approx(1.0)
    summary = summarise(result.per_user)
    assert list(summary.columns) == [
        "Method",
        "sampling",
        "λ",
        "seed",
        "split",
        "AUC",
        "MRR",
        "R@1",
        "P@1",
        "nDCG@1",
        "nDCG@1 (paper)",
        "R@2",
        "P@2",
        "nDCG@2",
        "nDCG@2 (paper)",
        "users",
    ]
    assert summary.loc[0, "AUC"] == pytest.approx(0.75)
    assert str(to_table(result.per_user).schema.field("l2").type) == "string"
    curves = result.curves
    assert curves["k"].tolist() == [1, 2, 3]
    assert curves["precision"].iloc[1] == pytest.approx((0.5 + 1.0) / 2)


def test_summary_order_oracle_first_random_last():
    per_user = pd.DataFrame(
        {
            "method": ["random", "visrank", "oracle", "curatornet"],
            "sampling": ["", "", "", "guidelines"],
            "l2": ["", "", "", "0.001"],
            "seed": ["", "", "", "0"],
            "split": "test",
            "user": [0, 0, 0, 0],
            "auc": [0.9, 0.6, 1.0, 0.7],  # Random last even with the best AUC of the rest
            "mrr": 0.0,
            "recall@20": 0.0,
            "precision@20": 0.0,
            "ndcg@20": 0.0,
            "ndcg_paper@20": 0.0,
        }
    )
    summary = summarise(per_user)
    assert summary["Method"].tolist() == ["Oracle", "CuratorNet", "VisRank", "Random"]


def test_paper_ndcg_divides_by_the_ideal_dcg_of_the_hits():
    # Truth of 3 items; hits at ranks 2 and 4 of the top 5.
    hit = np.array([[False, True, False, True, False]])
    paper = metrics.ndcg_paper_curve(hit)[0]
    standard = metrics.ndcg_curve(hit, np.array([3]))[0]
    # Hand-computed: DCG@5 = 1/log2(3) + 1/log2(5) = 0.63093 + 0.43068 = 1.06161;
    # the paper's ideal is that of 2 hits, 1 + 1/log2(3) = 1.63093; the standard one
    # that of min(3, 5) = 3 items, 1.63093 + 0.5 = 2.13093.
    assert paper[4] == pytest.approx(1.06161 / 1.63093, abs=1e-5)
    assert standard[4] == pytest.approx(1.06161 / 2.13093, abs=1e-5)
    # At k = 1 there is no hit yet: 0 in both forms; at k = 2 one hit at rank 2.
    assert paper[0] == 0.0 and standard[0] == 0.0
    assert paper[1] == pytest.approx(0.63093, abs=1e-5)
    # A perfect ranking (the Oracle) scores 1 in both forms.
    oracle = np.array([[True, True, True, False, False]])
    np.testing.assert_allclose(metrics.ndcg_paper_curve(oracle)[0][2:], 1.0)
    np.testing.assert_allclose(metrics.ndcg_curve(oracle, np.array([3]))[0][2:], 1.0)
