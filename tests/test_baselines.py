"""VisRank against a direct NumPy computation; Random, Oracle and MostPopular behaviour."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from curatornet.errors import InputError
from curatornet.models import baselines
from curatornet.models.base import Queries, Scorer
from curatornet.models.baselines import MostPopular, Oracle, RandomScorer, VisRank


def _direct_visrank(embeddings, profile, items, aggregate, top_k):
    out = np.zeros(len(items))
    for col, i in enumerate(items):
        sims = []
        for j in profile:
            a, b = embeddings[i], embeddings[j]
            sims.append(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))))
        sims = sorted(sims, reverse=True)
        out[col] = sims[0] if aggregate == "max" else np.mean(sims[:top_k])
    return out


@pytest.mark.parametrize("aggregate,top_k", [("max", 1), ("topk_mean", 2), ("topk_mean", 5)])
def test_visrank_matches_direct_computation(aggregate, top_k, monkeypatch):
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((25, 6)).astype(np.float32)
    profiles = [np.array([1, 4, 7]), np.array([3]), np.array([0, 2, 9, 11, 13, 20])]
    items = np.array([0, 5, 6, 8, 24, 3])
    # A tiny block size forces several groups of queries, as on large inputs.
    monkeypatch.setattr(baselines, "_BLOCK_FLOATS", 20)
    scorer = VisRank(embeddings, aggregate=aggregate, top_k=top_k)
    assert isinstance(scorer, Scorer)
    got = scorer.score(Queries(np.arange(3), profiles), items)
    assert got.dtype == np.float32 and got.shape == (3, len(items))
    for row, profile in enumerate(profiles):
        np.testing.assert_allclose(got[row], _direct_visrank(embeddings, profile, items, aggregate, top_k), atol=1e-5)


def test_visrank_empty_profile_and_bad_option():
    embeddings = np.eye(4, dtype=np.float32)
    got = VisRank(embeddings).score(
        Queries(np.array([0, 1]), [np.array([], dtype=np.int32), np.array([2])]), np.arange(4)
    )
    np.testing.assert_allclose(got, [[0, 0, 0, 0], [0, 0, 1, 0]])
    with pytest.raises(InputError, match="aggregate"):
        VisRank(embeddings, aggregate="mean")


def test_random_is_seeded_and_oracle_ranks_truth_first():
    queries = Queries(np.array([0, 1]), [np.array([0]), np.array([1])], truth=[np.array([3]), np.array([1, 4])])
    items = np.arange(6)
    a = RandomScorer(seed=1).score(queries, items)
    assert np.array_equal(a, RandomScorer(seed=1).score(queries, items))
    assert not np.array_equal(a, RandomScorer(seed=2).score(queries, items))
    oracle = Oracle().score(queries, items)
    assert oracle[0].argmax() == 3 and set(np.flatnonzero(oracle[1] == oracle[1].max())) == {1, 4}
    with pytest.raises(InputError, match="truth"):
        Oracle().score(Queries(np.array([0]), [np.array([0])]), items)


def test_mostpopular_counts_training_purchases_before_each_query_and_breaks_ties_by_item():
    ms = lambda day: np.datetime64(f"2020-01-{day:02d}", "ms")  # noqa: E731
    purchases = pd.DataFrame(
        {
            "item": [3, 3, 1, 1, 1, 4, 2, 0],
            "time": [ms(1), ms(2), ms(3), ms(4), ms(5), ms(1), ms(2), ms(2)],
            "split": ["train", "train", "train", "train", "train", "train", "valid", "test"],
        }
    )
    scorer = MostPopular(purchases, n_items=5)
    queries = Queries(np.array([0, 1, 2]), [np.array([0])] * 3, times=np.array([ms(3), ms(5), ms(9)]).astype(np.int64))
    scores = scorer.score(queries, np.arange(5))
    order = np.argsort(-scores, axis=1, kind="stable")
    # Day 3: item 3 bought twice, item 4 once; the rest never (ties: lower item index first).
    # Valid and test purchases (items 2 and 0) never count: they are not the training log.
    assert order[0].tolist() == [3, 4, 0, 1, 2]
    # Day 5: item 1 twice (day 3 and 4; the purchase on day 5 is not before the query), tied with 3.
    assert order[1].tolist() == [1, 3, 4, 0, 2]
    assert order[2].tolist() == [1, 3, 4, 0, 2]  # three purchases of item 1 by day 9
    assert len(np.unique(scores[0])) == 5  # a strict order: no AUC tie
    # Only the candidates asked for are ranked, in the same order.
    subset = scorer.score(queries, np.array([4, 0, 3]))
    assert np.argsort(-subset[0], kind="stable").tolist() == [2, 0, 1]
    # Without a query time: the whole training log.
    assert np.argsort(-scorer.score(Queries(np.array([0]), [np.array([0])]), np.arange(5))[0]).tolist()[0] == 1
    with pytest.raises(InputError, match="split"):
        MostPopular(purchases.drop(columns="split"), n_items=5)
