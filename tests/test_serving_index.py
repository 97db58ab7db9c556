"""Item indexes: exact search against brute force; faiss equal to exact when nothing is approximated."""

from __future__ import annotations

import numpy as np
import pytest

from curatornet.errors import InputError
from curatornet.serving.index import ExactIndex, Exclusions, FaissIndex, make_index

DIM, N = 16, 2000


@pytest.fixture(scope="module")
def vectors():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((12, DIM)) * 3
    items = (centres[rng.integers(0, 12, N)] + rng.standard_normal((N, DIM))).astype(np.float32)
    queries = rng.standard_normal((25, DIM)).astype(np.float32) * 2
    return items, queries


def brute_force(items, ids, queries, k, removed=(), exclude=None):
    scores = queries @ items.T
    scores[:, np.isin(ids, list(removed))] = -np.inf
    if exclude is not None:
        for row, item in zip(exclude.rows, exclude.ids):
            scores[row, ids == item] = -np.inf
    order = np.lexsort((np.broadcast_to(ids, scores.shape), -scores), axis=1)[:, :k]
    return ids[order], np.take_along_axis(scores, order, axis=1)


def exclusions(rng, ids, n_queries):
    counts = rng.integers(0, 40, n_queries)
    return Exclusions(np.repeat(np.arange(n_queries), counts), rng.choice(ids, counts.sum()))


def test_exact_index_matches_brute_force_with_removals_and_exclusions(vectors):
    items, queries = vectors
    ids = np.arange(N) * 3 + 7  # ids are not row numbers
    index = ExactIndex(DIM)
    index.add(ids[:1500], items[:1500])
    index.add(ids[1500:], items[1500:])  # grows past its first capacity
    rng = np.random.default_rng(1)
    removed = rng.choice(ids, 300, replace=False)
    index.remove(removed)
    index.remove(removed[:10])  # removing twice changes nothing
    assert len(index) == N - 300
    exclude = exclusions(rng, ids, len(queries))
    scores, found = index.search(queries, 20, exclude)
    expected_ids, expected_scores = brute_force(items, ids, queries, 20, removed, exclude)
    np.testing.assert_array_equal(found, expected_ids)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5)


def test_exact_index_pads_short_lists_and_refuses_unordered_ids(vectors):
    items, queries = vectors
    index = ExactIndex(DIM)
    index.add(np.arange(5), items[:5])
    scores, found = index.search(queries[:2], 10, Exclusions.for_one_query(np.array([1])))
    assert found.shape == (2, 5)
    assert (found[0] == -1).sum() == 1 and 1 not in found[0] and np.isneginf(scores[0, -1])
    with pytest.raises(InputError, match="increasing order"):
        index.add(np.array([3]), items[:1])


def test_unknown_index_kind():
    with pytest.raises(InputError, match="unknown index"):
        make_index("annoy", DIM)


@pytest.fixture
def faiss_index():
    pytest.importorskip("faiss", reason="faiss-cpu not installed (pip install -e .[index])")
    # Every cell probed and every candidate re-ranked: the exact answer.
    return FaissIndex(DIM, n_lists=8, n_probe=8, k_factor=200, threads=1)


def test_faiss_without_approximation_equals_exact_through_removals_and_additions(vectors, faiss_index):
    items, queries = vectors
    ids = np.arange(N)
    exact = ExactIndex(DIM)
    faiss_index.train(items)
    for part in (slice(0, 1200), slice(1200, N)):
        faiss_index.add(ids[part], items[part])
        exact.add(ids[part], items[part])
    rng = np.random.default_rng(2)
    # Remove every query's current top 30: the first search depth cannot hold k survivors.
    top = exact.search(queries, 30)[1]
    removed = np.unique(top)
    for index in (faiss_index, exact):
        index.remove(removed)
    assert len(faiss_index) == len(exact) == N - len(removed)
    exclude = exclusions(rng, ids, len(queries))
    scores, found = faiss_index.search(queries, 10, exclude)
    expected_scores, expected = exact.search(queries, 10, exclude)
    assert (found >= 0).all()
    np.testing.assert_array_equal(found, expected)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-4, atol=1e-4)
    assert not np.isin(found, removed).any()


def test_faiss_default_settings_scale_with_the_catalogue(vectors):
    pytest.importorskip("faiss", reason="faiss-cpu not installed (pip install -e .[index])")
    items, queries = vectors
    index = FaissIndex(DIM, threads=1)
    index.add(np.arange(N), items)
    assert index.n_lists == 45 and index.n_probe == 22 and index.spec == "IVF45,PQ8x4fs,RFlat"
    exact = ExactIndex(DIM)
    exact.add(np.arange(N), items)
    found = index.search(queries, 20)[1]
    truth = exact.search(queries, 20)[1]
    recall = np.mean([len(np.intersect1d(a, b)) / 20 for a, b in zip(found, truth)])
    assert recall >= 0.9, recall
