"""TensorFlow ops on the CPU kernels of :mod:`curatornet.models.kernels`, with their gradients.

They replace, in CuratorNet's training step, the gathers of item vectors,
the profile pooling and the margin (see :meth:`CuratorNet.triple_margins`).
The kernels run on the CPU, so the ops are used only where TensorFlow sees
no GPU (:func:`available`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numba
import tensorflow as tf

from curatornet.models import kernels

# TensorFlow may call two kernels from two of its threads at once; the kernels run one at a time,
# each on the job's threads (Numba's thread count is per calling thread, so it is set at each call,
# and column_blocks() reads it).
_LOCK = threading.Lock()


def available() -> bool:
    """Whether the fused ops suit this process: TensorFlow places ops on the CPU (no GPU visible)."""
    return not tf.config.list_physical_devices("GPU")


def _threads() -> int:
    """The job's threads: TensorFlow's intra-op setting, else Numba's default (every core)."""
    configured = tf.config.threading.get_intra_op_parallelism_threads()
    return min(configured, numba.config.NUMBA_NUM_THREADS) if configured > 0 else numba.config.NUMBA_NUM_THREADS


def _call(kernel, inputs, outputs):
    """``kernel`` on ``inputs`` as one op, on the job's threads; ``outputs``: the shape of each float32 result."""

    def run(*args):
        with _LOCK:
            numba.set_num_threads(_threads())
            result = kernel(*args)
        return result if isinstance(result, tuple) else (result,)

    results = tf.numpy_function(run, inputs, [tf.float32] * len(outputs), stateful=False)
    if not isinstance(results, list | tuple):  # one result comes back bare in eager mode
        results = [results]
    for result, shape in zip(results, outputs):
        result.set_shape(shape)
    return results


def pool(h: tf.Tensor, values: tf.Tensor, row_ids: tf.Tensor, parts: Sequence[str]) -> tf.Tensor:
    """``concat([segment_mean, segment_max] of gather(h, values) by row_ids)``, the ``parts`` asked for.

    ``row_ids`` are sorted and every profile has a row, as for the segment ops.
    """
    with_mean, with_max = "mean" in parts, "max" in parts
    d = h.shape[1]

    def forward(h, values, row_ids):
        return kernels.pool_forward(h, values, kernels.profile_offsets(row_ids), with_mean, with_max)

    def backward(h, values, row_ids, pooled, ties, upstream):
        offsets, width = kernels.profile_offsets(row_ids), kernels.column_blocks(h.shape[1])
        return kernels.pool_backward(h, values, offsets, pooled, ties, upstream, with_mean, with_max, width)

    @tf.custom_gradient
    def pooled_of(h):
        pooled, ties = _call(forward, [h, values, row_ids], [[None, len(parts) * d], [None, d]])

        def gradient(upstream):
            (grad,) = _call(backward, [h, values, row_ids, pooled, ties, upstream], [h.shape])
            return grad

        return pooled, gradient

    return pooled_of(h)


def margins(profiles: tf.Tensor, h: tf.Tensor, rows: tf.Tensor, positive: tf.Tensor, negative: tf.Tensor) -> tf.Tensor:
    """``reduce_sum(gather(profiles, rows) * (gather(h, positive) − gather(h, negative)), axis=1)``."""

    def backward(profiles, h, rows, positive, negative, upstream):
        width = kernels.column_blocks(h.shape[1])
        return kernels.margin_backward(profiles, h, rows, positive, negative, upstream, width)

    @tf.custom_gradient
    def margins_of(profiles, h):
        (margin,) = _call(kernels.margin_forward, [profiles, h, rows, positive, negative], [[None]])

        def gradient(upstream):
            return _call(backward, [profiles, h, rows, positive, negative, upstream], [profiles.shape, h.shape])

        return margin, gradient

    return margins_of(profiles, h)
