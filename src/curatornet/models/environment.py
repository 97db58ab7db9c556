"""The process around a training job: TensorFlow's threads and seeds, and glibc's allocator."""

from __future__ import annotations

import ctypes
import logging

from curatornet.seeds import stream_seed

log = logging.getLogger(__name__)

# mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def configure_tensorflow(threads: int | None = None, seed: int | None = None) -> None:
    """Thread counts (before TensorFlow starts its runtime) and global seeds.

    GPUs are left visible on purpose: TensorFlow places ops on one when present.
    """
    import keras
    import tensorflow as tf

    if threads is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(int(threads))
            tf.config.threading.set_inter_op_parallelism_threads(int(threads))
        except RuntimeError:  # runtime already initialised (e.g. second call in one process)
            log.debug("TensorFlow threads already fixed; keeping them")
    if seed is not None:
        # Python's, NumPy's and TensorFlow's global generators, from the run's own stream.
        keras.utils.set_random_seed(stream_seed(seed, "global"))


def tune_allocator(top_pad: int = 512 << 20) -> bool:
    """Keep freed memory mapped instead of returning it to the kernel (glibc only).

    A training step allocates and frees the same large buffers every batch; by
    default glibc serves those with fresh mmap()s (or trims the heap), so each
    step pays page faults again. ``mallopt`` has the same effect as the
    MALLOC_*_ environment variables but works after the process has started,
    which a Snakemake ``script:`` job needs. Returns False where unavailable.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # glibc's upper bound for this parameter
    ok &= mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
    ok &= mallopt(_M_TOP_PAD, top_pad)
    return bool(ok)
