"""Random streams of a run, each derived from the run's seed and the stream's name.

Seeding layer k with ``seed + k`` makes seed 0's second layer start from seed
1's first layer's stream: replicate runs would share their starting weights.
Here every stream (a layer's initial weights, the batch order, TensorFlow's
global seed) is keyed by (seed, name) through NumPy's ``SeedSequence``, whose
hashing makes the streams of distinct keys independent, and which gives the
same numbers on every platform and Python version (unlike ``hash()``).
"""

from __future__ import annotations

import zlib

import numpy as np


def _name_key(name: str) -> int:
    # crc32 is stable across processes and versions; SeedSequence mixes it with the seed.
    return zlib.crc32(name.encode("utf-8"))


def stream_seed(seed: int, name: str) -> int:
    """A 31-bit seed (what Keras and TensorFlow accept) for stream ``name`` of run ``seed``."""
    if int(seed) < 0:
        raise ValueError(f"seeds are non-negative integers, not {seed}")
    state = np.random.SeedSequence([int(seed), _name_key(name)]).generate_state(1, dtype=np.uint32)
    return int(state[0] >> 1)


def stream_rng(seed: int, name: str) -> np.random.Generator:
    """A NumPy generator for stream ``name`` of run ``seed``."""
    if int(seed) < 0:
        raise ValueError(f"seeds are non-negative integers, not {seed}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), _name_key(name)]))
