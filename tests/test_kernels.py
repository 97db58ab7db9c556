"""CuratorNet's CPU step kernels against plain NumPy: pooling with ties, margins, gradients, thread counts."""

from __future__ import annotations

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from curatornet.models import kernels  # noqa: E402

PARTS = [(True, True), (True, False), (False, True)]


def batch(seed: int = 0, n_items: int = 40, d: int = 37):
    """Profiles of 1 to 6 rows, the first one item twice (a tie for the max in every column), and triples.

    ``d`` is not a multiple of the kernels' cache-line blocks, so the last block is partial.
    """
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((n_items, d)).astype(np.float32)
    lengths = rng.integers(1, 7, size=25)
    lengths[0] = 2
    values = rng.integers(0, n_items, lengths.sum()).astype(np.int32)
    values[1] = values[0]
    row_ids = np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)
    n_triples = 60
    rows = rng.integers(0, len(lengths), n_triples).astype(np.int32)
    positive = rng.integers(0, n_items, n_triples).astype(np.int32)
    negative = rng.integers(0, n_items, n_triples).astype(np.int32)
    negative[0] = positive[0]  # a triple whose two items are one row of h
    return h, values, row_ids, rows, positive, negative


def numpy_pool(h, values, row_ids, with_mean, with_max):
    n = row_ids[-1] + 1
    rows = [h[values[row_ids == p]] for p in range(n)]
    parts = ([np.stack([r.mean(0) for r in rows])] if with_mean else []) + (
        [np.stack([r.max(0) for r in rows])] if with_max else []
    )
    return np.concatenate(parts, axis=1)


def numpy_pool_gradient(h, values, row_ids, upstream, with_mean, with_max):
    """TensorFlow's semantics: the mean spreads evenly; a max reached by several rows is shared equally."""
    d = h.shape[1]
    grad = np.zeros_like(h, dtype=np.float64)
    for p in range(row_ids[-1] + 1):
        items = values[row_ids == p]
        rows = h[items]
        share = np.zeros_like(rows, dtype=np.float64)
        if with_mean:
            share += upstream[p, :d] / len(items)
        if with_max:
            top = rows.max(0)
            hit = rows == top
            share += hit * (upstream[p, d if with_mean else 0 :][:d] / hit.sum(0))
        np.add.at(grad, items, share)
    return grad


@pytest.mark.parametrize("with_mean,with_max", PARTS)
def test_pooling_and_its_gradient_equal_numpy_with_ties(with_mean, with_max):
    h, values, row_ids, *_ = batch()
    offsets = kernels.profile_offsets(row_ids)
    pooled, ties = kernels.pool_forward(h, values, offsets, with_mean, with_max)
    np.testing.assert_allclose(pooled, numpy_pool(h, values, row_ids, with_mean, with_max), rtol=1e-6, atol=1e-6)
    if with_max:
        assert (ties[0] == 2).all() and (ties[1:] >= 1).all()
    upstream = np.random.default_rng(1).standard_normal(pooled.shape).astype(np.float32)
    width = kernels.column_blocks(h.shape[1])
    grad = kernels.pool_backward(h, values, offsets, pooled, ties, upstream, with_mean, with_max, width)
    expected = numpy_pool_gradient(h, values, row_ids, upstream, with_mean, with_max)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6)


def test_margins_and_their_gradients_equal_numpy():
    h, values, row_ids, rows, positive, negative = batch(seed=2)
    profiles = np.random.default_rng(3).standard_normal((row_ids[-1] + 1, h.shape[1])).astype(np.float32)
    margins = kernels.margin_forward(profiles, h, rows, positive, negative)
    expected = np.einsum("td,td->t", profiles[rows].astype(np.float64), h[positive] - h[negative].astype(np.float64))
    np.testing.assert_allclose(margins, expected, rtol=1e-5, atol=1e-5)
    assert margins[0] == 0  # its positive is its negative
    upstream = np.random.default_rng(4).standard_normal(len(rows)).astype(np.float32)
    d_profiles, d_h = kernels.margin_backward(
        profiles, h, rows, positive, negative, upstream, kernels.column_blocks(h.shape[1])
    )
    want_profiles = np.zeros_like(profiles, dtype=np.float64)
    np.add.at(want_profiles, rows, upstream[:, None] * (h[positive] - h[negative]))
    want_h = np.zeros_like(h, dtype=np.float64)
    np.add.at(want_h, positive, upstream[:, None] * profiles[rows])
    np.add.at(want_h, negative, -upstream[:, None] * profiles[rows])
    np.testing.assert_allclose(d_profiles, want_profiles, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d_h, want_h, rtol=1e-5, atol=1e-5)


def test_results_do_not_depend_on_the_thread_count():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one core: Numba runs one thread")
    h, values, row_ids, rows, positive, negative = batch(seed=5, n_items=300, d=200)
    offsets = kernels.profile_offsets(row_ids)
    rng = np.random.default_rng(6)
    profiles = rng.standard_normal((row_ids[-1] + 1, 200)).astype(np.float32)
    up_pool = rng.standard_normal((len(profiles), 400)).astype(np.float32)
    up_margin = rng.standard_normal(len(rows)).astype(np.float32)
    before = numba.get_num_threads()
    outputs = []
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            width = kernels.column_blocks(200, threads)
            pooled, ties = kernels.pool_forward(h, values, offsets, True, True)
            outputs.append(
                [
                    pooled,
                    kernels.pool_backward(h, values, offsets, pooled, ties, up_pool, True, True, width),
                    kernels.margin_forward(profiles, h, rows, positive, negative),
                    *kernels.margin_backward(profiles, h, rows, positive, negative, up_margin, width),
                ]
            )
    finally:
        numba.set_num_threads(before)
    assert kernels.column_blocks(200, 1) != kernels.column_blocks(200, 2)
    for one, two in zip(*outputs):
        assert np.array_equal(one, two)


def test_offsets_of_sorted_row_ids():
    assert kernels.profile_offsets(np.array([0, 0, 1, 2, 2, 2], np.int32)).tolist() == [0, 2, 3, 6]
    assert kernels.profile_offsets(np.zeros(0, np.int32)).tolist() == [0]
