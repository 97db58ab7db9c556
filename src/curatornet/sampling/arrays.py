"""Vectorised helpers on flat NumPy arrays (ragged ranges, sorted look-ups, first occurrences)."""

from __future__ import annotations

import numpy as np


def ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for every (s, n), without a Python loop.

    int32 when every value fits (half the memory traffic of int64), else int64.
    """
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    keep = lengths > 0
    starts, lengths = starts[keep], lengths[keep]
    if len(lengths) == 0:
        return np.empty(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    small = int((starts + lengths).max()) < np.iinfo(np.int32).max and int(starts.min()) >= 0
    steps = np.ones(int(ends[-1]), dtype=np.int32 if small else np.int64)
    steps[0] = starts[0]
    # At the first element of each range jump from the previous range's last value.
    steps[ends[:-1]] = starts[1:] - (starts[:-1] + lengths[:-1] - 1)
    return np.cumsum(steps, dtype=steps.dtype)


def row_ids(lengths: np.ndarray) -> np.ndarray:
    """For ragged rows of the given lengths, the row index of every flat element."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)


def offsets_from_lengths(lengths: np.ndarray) -> np.ndarray:
    """int64 offsets (n + 1) of ragged rows."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def sorted_contains(sorted_keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Boolean mask: which ``queries`` occur in the ascending array ``sorted_keys``."""
    if len(sorted_keys) == 0:
        return np.zeros(len(queries), dtype=bool)
    if len(queries) > (1 << 16) and len(sorted_keys) > (1 << 20):
        # Many random look-ups in a big array: in ascending order they stay in
        # cache (NumPy narrows each search with the previous one), ~7x faster.
        order = np.argsort(queries)
        found = np.empty(len(queries), dtype=bool)
        found[order] = _lookup(sorted_keys, queries[order])
        return found
    return _lookup(sorted_keys, queries)


def _lookup(sorted_keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(sorted_keys, queries)
    np.minimum(pos, len(sorted_keys) - 1, out=pos)
    return sorted_keys[pos] == queries


def first_occurrence_mask(keys: np.ndarray) -> np.ndarray:
    """True for the first occurrence of every value of ``keys`` (in array order).

    One plain sort finds the values that repeat (``np.unique`` is several
    times slower on millions of keys); only the rows carrying a repeated value
    then need the order-preserving (stable) treatment.
    """
    keep = np.ones(len(keys), dtype=bool)
    if len(keys) < 2:
        return keep
    ordered = np.sort(keys)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if len(repeated) == 0:
        return keep
    repeated = repeated[np.concatenate(([True], repeated[1:] != repeated[:-1]))]  # already sorted
    rows = _rows_with(keys, repeated)
    sub = keys[rows]
    order = np.argsort(sub, kind="stable")
    sub_sorted = sub[order]
    later = np.concatenate(([False], sub_sorted[1:] == sub_sorted[:-1]))
    keep[rows[order[later]]] = False
    return keep


def _rows_with(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Indexes of ``keys`` found in the short sorted array ``values``.

    For hash keys a table indexed by the low bits first rules out nearly all
    rows cheaply; only the few candidates are binary-searched.
    """
    if keys.dtype != np.uint64 or len(keys) < (1 << 16):
        return np.flatnonzero(sorted_contains(values, keys))
    low = np.uint64((1 << 22) - 1)
    hit = np.zeros(1 << 22, dtype=bool)
    hit[values & low] = True
    candidates = np.flatnonzero(hit[keys & low])
    return candidates[sorted_contains(values, keys[candidates])]


def group_starts(sorted_values: np.ndarray) -> np.ndarray:
    """Start positions of the runs of equal values in a sorted array."""
    if len(sorted_values) == 0:
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate(([True], sorted_values[1:] != sorted_values[:-1])))
