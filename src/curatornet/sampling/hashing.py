"""64-bit hashes of triples (profile as a set, positive, negative).

Every item is first scrambled into a 64-bit value; a profile's value is the
sum (modulo 2**64) of its items' values, which does not depend on their order.
The positive and the negative are then folded in one after the other with
different salts, so swapping them changes the hash. The hash ignores the user:
two triples with the same profile, positive and negative are the same
training example for CuratorNet (paper footnote 3).
"""

from __future__ import annotations

import numpy as np

# Distinct odd 64-bit constants keep the roles (profile item, positive, negative) apart.
_SALT_PROFILE = np.uint64(0x5851F42D4C957F2D)
_SALT_POSITIVE = np.uint64(0x14057B7EF767814F)
_SALT_NEGATIVE = np.uint64(0x2545F4914F6CDD1D)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def mix64(values: np.ndarray) -> np.ndarray:
    """A bijective 64-bit scrambler (the SplitMix64 finaliser) applied element-wise."""
    z = np.asarray(values).astype(np.uint64) + _GOLDEN  # uint64 arithmetic wraps around
    z ^= z >> _S30
    z *= _MUL1
    z ^= z >> _S27
    z *= _MUL2
    z ^= z >> _S31
    return z


def triple_hashes(offsets: np.ndarray, values: np.ndarray, positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """uint64 hash of every triple; ``offsets``/``values`` hold the profiles (ragged).

    Profiles are treated as sets: they must not repeat an item (the samplers
    never build such profiles).
    """
    values = np.asarray(values)
    running = np.zeros(len(values) + 1, dtype=np.uint64)
    if len(values):
        if values.min() < 0:
            raise ValueError("item indexes must not be negative")
        # Items are small dense integers: scramble each distinct one once, then look them up.
        table = mix64(np.arange(int(values.max()) + 1, dtype=np.uint64) ^ _SALT_PROFILE)
        np.cumsum(table[values], out=running[1:])
    offsets = np.asarray(offsets, dtype=np.int64)
    profile = running[offsets[1:]] - running[offsets[:-1]]  # wrapping sum per row
    del running
    h = mix64(profile)
    h = mix64(h + mix64(np.asarray(positive).astype(np.uint64) ^ _SALT_POSITIVE))
    h = mix64(h + mix64(np.asarray(negative).astype(np.uint64) ^ _SALT_NEGATIVE))
    return h
