"""CPU kernels of CuratorNet's training step around its matmuls (Numba; no TensorFlow here).

TensorFlow spends most of a step outside the matmuls on the gathers of item
vectors, the mean and max pooling and their gradients: each is a chain of
ops that each read and write every gathered row (the max's gradient alone
is six of them), and the gathers' gradients are scatter-adds. These kernels
do each in one pass:

- :func:`pool_forward` / :func:`pool_backward`: the mean and max of each
  profile's rows of ``h`` (the tower outputs), read by index, and the
  gradient with respect to ``h``;
- :func:`margin_forward` / :func:`margin_backward`: the margin
  ``profiles[r]·(h[i] − h[j])`` of each triple, and its gradients.

The gradients are those of the TensorFlow ops they replace: a max reached
by several rows shares its gradient equally among them, as
``tf.math.segment_max``'s does. Results do not depend on the thread count:
the forward kernels split work by output row, and the backward kernels,
which accumulate into rows shared by many profiles or triples, split the
columns, so every element is summed in the same order whatever the
threads. Threads are Numba's (``numba.set_num_threads``).
"""

from __future__ import annotations

import numba as nb
import numpy as np

#: float32 lanes per cache line: column blocks are whole lines.
LINE = 16


@nb.njit(nogil=True, cache=True)
def profile_offsets(row_ids: np.ndarray) -> np.ndarray:
    """Start of each profile's rows given sorted ``row_ids``: (n_profiles + 1,) with n_profiles = last id + 1."""
    n_profiles = row_ids[-1] + 1 if row_ids.size else 0
    offsets = np.zeros(n_profiles + 1, np.int64)
    for k in range(row_ids.size):
        offsets[row_ids[k] + 1] += 1
    for p in range(n_profiles):
        offsets[p + 1] += offsets[p]
    return offsets


def column_blocks(d: int, threads: int | None = None) -> int:
    """Width of the backward kernels' column blocks: one block per thread (by default Numba's
    count for the calling thread), each a whole number of cache lines."""
    threads = nb.get_num_threads() if threads is None else threads
    return ((d + threads - 1) // threads + LINE - 1) // LINE * LINE


@nb.njit(nogil=True, cache=True)
def _count(d: int, width: int) -> int:
    """Column blocks of ``width`` in ``d`` columns."""
    return (d + width - 1) // width


@nb.njit(nogil=True, cache=True)
def _columns(block: int, width: int, d: int) -> tuple[int, int]:
    """First and past-the-last column of ``block``."""
    return block * width, min(d, (block + 1) * width)


@nb.njit(parallel=True, nogil=True, cache=True)
def pool_forward(
    h: np.ndarray, values: np.ndarray, offsets: np.ndarray, with_mean: bool, with_max: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled profiles ``[mean | max]`` (the parts asked for), and how many rows reach each max.

    Profile ``p`` is rows ``h[values[offsets[p]:offsets[p + 1]]]``; every profile has a row.
    """
    n_profiles, d = offsets.size - 1, h.shape[1]
    pooled = np.empty((n_profiles, (int(with_mean) + int(with_max)) * d), np.float32)
    ties = np.ones((n_profiles, d), np.float32)
    at_max = d if with_mean else 0
    for p in nb.prange(n_profiles):
        lo, hi = offsets[p], offsets[p + 1]
        if with_mean:
            total = pooled[p, 0:d]
            total[:] = h[values[lo]]
            for k in range(lo + 1, hi):
                row = h[values[k]]
                for c in range(d):
                    total[c] += row[c]
            count = np.float32(hi - lo)
            for c in range(d):
                total[c] /= count
        if with_max:
            top, reached = pooled[p, at_max : at_max + d], ties[p]
            top[:] = h[values[lo]]
            for k in range(lo + 1, hi):
                row = h[values[k]]
                for c in range(d):
                    if row[c] > top[c]:
                        top[c] = row[c]
                        reached[c] = 1
                    elif row[c] == top[c]:
                        reached[c] += 1
    return pooled, ties


@nb.njit(parallel=True, nogil=True, cache=True)
def pool_backward(
    h: np.ndarray,
    values: np.ndarray,
    offsets: np.ndarray,
    pooled: np.ndarray,
    ties: np.ndarray,
    upstream: np.ndarray,
    with_mean: bool,
    with_max: bool,
    width: int,
) -> np.ndarray:
    """Gradient with respect to ``h`` of :func:`pool_forward`, given the gradient of its pooled output."""
    n_profiles, d = offsets.size - 1, h.shape[1]
    at_max = d if with_mean else 0
    grad = np.zeros(h.shape, np.float32)
    for block in nb.prange(_count(d, width)):
        c0, c1 = _columns(block, width, d)
        w = c1 - c0
        to_mean = np.zeros(w, np.float32)
        to_max = np.zeros(w, np.float32)
        for p in range(n_profiles):
            lo, hi = offsets[p], offsets[p + 1]
            if with_mean:
                count = np.float32(hi - lo)
                for c in range(w):
                    to_mean[c] = upstream[p, c0 + c] / count
            top = pooled[p, at_max + c0 : at_max + c1]
            if with_max:
                for c in range(w):
                    to_max[c] = upstream[p, at_max + c0 + c] / ties[p, c0 + c]
            for k in range(lo, hi):
                row, out = h[values[k], c0:c1], grad[values[k], c0:c1]
                if with_max:
                    for c in range(w):
                        out[c] += to_mean[c] + (to_max[c] if row[c] == top[c] else np.float32(0))
                else:
                    for c in range(w):
                        out[c] += to_mean[c]
    return grad


@nb.njit(parallel=True, nogil=True, cache=True)
def margin_forward(
    profiles: np.ndarray, h: np.ndarray, rows: np.ndarray, positive: np.ndarray, negative: np.ndarray
) -> np.ndarray:
    """``profiles[rows[t]]·(h[positive[t]] − h[negative[t]])`` for each triple t."""
    n, d = positive.size, h.shape[1]
    margins = np.empty(n, np.float32)
    for t in nb.prange(n):
        profile, better, worse = profiles[rows[t]], h[positive[t]], h[negative[t]]
        total = np.float32(0)
        for c in range(d):
            total += profile[c] * (better[c] - worse[c])
        margins[t] = total
    return margins


@nb.njit(parallel=True, nogil=True, cache=True)
def margin_backward(
    profiles: np.ndarray,
    h: np.ndarray,
    rows: np.ndarray,
    positive: np.ndarray,
    negative: np.ndarray,
    upstream: np.ndarray,
    width: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients with respect to ``profiles`` and ``h`` of :func:`margin_forward`."""
    n, d = positive.size, h.shape[1]
    d_profiles = np.zeros(profiles.shape, np.float32)
    d_h = np.zeros(h.shape, np.float32)
    for block in nb.prange(_count(d, width)):
        c0, c1 = _columns(block, width, d)
        w = c1 - c0
        for t in range(n):
            g = upstream[t]
            r, i, j = rows[t], positive[t], negative[t]
            profile, better, worse = profiles[r, c0:c1], h[i, c0:c1], h[j, c0:c1]
            to_profile, to_better, to_worse = d_profiles[r, c0:c1], d_h[i, c0:c1], d_h[j, c0:c1]
            for c in range(w):
                to_profile[c] += g * (better[c] - worse[c])
            for c in range(w):
                to_better[c] += g * profile[c]
            for c in range(w):
                to_worse[c] -= g * profile[c]
    return d_profiles, d_h
