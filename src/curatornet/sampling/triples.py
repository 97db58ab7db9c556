"""The one container of triples (profile, positive, negative, user) and profile building.

Profiles are ragged: one flat ``values`` array with ``offsets``, so a long
profile costs no padding. The same container carries triples from sampling
through deduplication to training and the benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curatornet.artifacts import TRIPLETS_SCHEMA
from curatornet.errors import InputError, check_item_indexes
from curatornet.io import read_table
from curatornet.sampling.arrays import offsets_from_lengths, ranges
from curatornet.sampling.hashing import triple_hashes

#: Bytes of the boolean matrix used to subsample one chunk of long profiles.
_SUBSAMPLE_CHUNK_BYTES = 1 << 25
_MAX_ARROW_VALUES = np.iinfo(np.int32).max  # list<int32> has 32-bit offsets
TRIPLET_COLUMNS = ("profile", "positive", "negative", "user")


@dataclass
class Batch:
    """One training batch; profiles are ragged: ``values`` with sorted ``row_ids``."""

    values: np.ndarray  # int32, items of the batch's distinct profiles, profile after profile
    row_ids: np.ndarray  # int32, distinct profile of each value (non-decreasing)
    positive: np.ndarray  # int32 (b,)
    negative: np.ndarray  # int32 (b,)
    user: np.ndarray  # int32 (b,)
    profile_rows: np.ndarray | None = None  # int32 (b,), distinct profile of each triple; None: row i is triple i

    def __len__(self) -> int:
        return len(self.positive)

    @property
    def triple_profiles(self) -> np.ndarray:
        """Index into the distinct profiles for every triple."""
        return np.arange(len(self), dtype=np.int32) if self.profile_rows is None else self.profile_rows


@dataclass
class Triples:
    """Triples with ragged profiles: profile r is ``values[offsets[r]:offsets[r + 1]]``."""

    offsets: np.ndarray  # int64 (n + 1,)
    values: np.ndarray  # int32
    positive: np.ndarray  # int32 (n,)
    negative: np.ndarray  # int32 (n,)
    user: np.ndarray  # int32 (n,), -1 for artificial profiles
    guideline: np.ndarray | None = field(default=None, repr=False)  # object (n,) when read from a merged file
    profile_key: np.ndarray | None = field(default=None, repr=False)  # uint64 (n,), see add_profile_keys

    def __len__(self) -> int:
        return len(self.positive)

    @classmethod
    def empty(cls) -> Triples:
        none = np.empty(0, dtype=np.int32)
        return cls(np.zeros(1, dtype=np.int64), none, none, none, none)

    @classmethod
    def from_lists(
        cls,
        profiles: Sequence[Sequence[int]],
        positive: Sequence[int],
        negative: Sequence[int],
        user: Sequence[int] | None = None,
    ) -> Triples:
        """Build from Python lists (tests, small inputs)."""
        lengths = np.array([len(p) for p in profiles], dtype=np.int64)
        values = (
            np.concatenate([np.asarray(p, dtype=np.int32) for p in profiles]) if len(profiles) else np.zeros(0)
        ).astype(np.int32)
        users = np.full(len(positive), -1, np.int32) if user is None else np.asarray(user, np.int32)
        return cls(
            offsets_from_lengths(lengths), values, np.asarray(positive, np.int32), np.asarray(negative, np.int32), users
        )

    @classmethod
    def single_items(cls, items: np.ndarray, positive: np.ndarray, negative: np.ndarray) -> Triples:
        """Triples whose profiles are the one item ``items[k]`` each, of no user (user -1): D5, D6."""
        n = len(items)
        return cls(
            np.arange(n + 1, dtype=np.int64),
            np.asarray(items, dtype=np.int32),
            np.asarray(positive, dtype=np.int32),
            np.asarray(negative, dtype=np.int32),
            np.full(n, -1, dtype=np.int32),
        )

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def profile(self, row: int) -> np.ndarray:
        return self.values[self.offsets[row] : self.offsets[row + 1]]

    def hashes(self) -> np.ndarray:
        return triple_hashes(self.offsets, self.values, self.positive, self.negative)

    def add_profile_keys(self, seed: int = 0x5EED) -> Triples:
        """Give every triple a key of its profile (as a multiset of items).

        Many triples share a profile (all of a user's D3/D4 triples, say); a
        batch then pools and runs the profile head once per distinct profile.
        The key is the wrapping sum of one random 64-bit word per item, so it
        ignores order; different profiles collide with probability ~2^-64.
        """
        if len(self.values) == 0:
            self.profile_key = np.zeros(len(self), dtype=np.uint64)
            return self
        words = np.random.default_rng(seed).integers(0, 2**63, int(self.values.max()) + 1, dtype=np.uint64)
        words = words * np.uint64(2) + np.uint64(1)
        running = np.zeros(len(self.values) + 1, dtype=np.uint64)
        np.cumsum(words[self.values], out=running[1:])
        self.profile_key = running[self.offsets[1:]] - running[self.offsets[:-1]]  # wrapping sum per row
        return self

    def without_profiles(self) -> Triples:
        """The same triples with empty profiles (models that ignore profiles, like VBPR)."""
        offsets = np.zeros(len(self) + 1, np.int64)
        return Triples(offsets, np.zeros(0, np.int32), self.positive, self.negative, self.user, self.guideline)

    def take(self, rows: np.ndarray) -> Triples:
        """The given rows (indexes or a boolean mask), in that order."""
        rows = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows, dtype=np.int64)
        lengths = self.lengths()[rows]
        values = self.values[ranges(self.offsets[rows], lengths)]
        pick = lambda a: None if a is None else a[rows]
        return Triples(
            offsets_from_lengths(lengths),
            values.astype(np.int32, copy=False),
            self.positive[rows],
            self.negative[rows],
            self.user[rows],
            pick(self.guideline),
            pick(self.profile_key),
        )

    def batch(self, rows: np.ndarray, distinct_profiles: bool = False) -> Batch:
        """Gather the triples at ``rows`` without a Python loop per triple.

        With ``distinct_profiles`` (and profile keys), equal profiles in the
        batch are sent once and ``profile_rows`` maps triples to them.
        """
        rows = np.asarray(rows)
        if distinct_profiles and self.profile_key is not None:
            _, first, inverse = np.unique(self.profile_key[rows], return_index=True, return_inverse=True)
            distinct = self.batch(rows[first])
            return Batch(
                distinct.values,
                distinct.row_ids,
                self.positive[rows],
                self.negative[rows],
                self.user[rows],
                inverse.astype(np.int32).reshape(-1),
            )
        lengths = self.lengths()[rows]
        values = self.values[ranges(self.offsets[rows], lengths)].astype(np.int32, copy=False)
        row_ids = np.repeat(np.arange(len(rows), dtype=np.int32), lengths)
        return Batch(values, row_ids, self.positive[rows], self.negative[rows], self.user[rows])

    @classmethod
    def concat(cls, parts: list[Triples]) -> Triples:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        lengths = np.concatenate([p.lengths() for p in parts])
        return cls(
            offsets_from_lengths(lengths),
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.positive for p in parts]),
            np.concatenate([p.negative for p in parts]),
            np.concatenate([p.user for p in parts]),
        )

    def to_arrow(self, split: str, hashes: np.ndarray | None = None) -> pa.Table:
        """A table with the shard schema (``curatornet.artifacts.TRIPLETS_SCHEMA``)."""
        if len(self.values) > _MAX_ARROW_VALUES:
            raise ValueError(f"{len(self.values)} profile items exceed the 32-bit offsets of list<int32>")
        hashes = self.hashes() if hashes is None else hashes
        profiles = pa.ListArray.from_arrays(
            pa.array(self.offsets.astype(np.int32)), pa.array(self.values.astype(np.int32, copy=False))
        )
        return pa.table(
            {
                "profile": profiles,
                "positive": pa.array(self.positive.astype(np.int32, copy=False)),
                "negative": pa.array(self.negative.astype(np.int32, copy=False)),
                "user": pa.array(self.user.astype(np.int32, copy=False)),
                "split": constant_strings(split, len(self)),
                "hash": pa.array(hashes.astype(np.uint64, copy=False)),
            },
            schema=TRIPLETS_SCHEMA,
        )


def read_triplets(
    path: str | Path,
    n_items: int,
    guidelines: Sequence[str] | None = None,
    known_users_only: bool = False,
    allow_empty_profiles: bool = False,
) -> Triples:
    """Read a triplet file, keeping the ``guidelines`` given (all if None).

    ``known_users_only`` drops the artificial profiles (user = -1). Raises
    :class:`InputError` for a missing column, nulls, empty profiles (unless
    allowed: models that ignore profiles), item indexes outside
    ``[0, n_items)`` or a file with no usable triple.
    """
    table = read_table(path, TRIPLET_COLUMNS)
    if guidelines is not None:
        if "guideline" not in table.column_names:
            raise InputError(path, "guideline", table.column_names, "column needed to select guidelines is missing")
        table = table.filter(pc.is_in(table.column("guideline"), value_set=pa.array(list(guidelines))))
    if known_users_only:
        table = table.filter(pc.greater_equal(table.column("user"), 0))
    if table.num_rows == 0:
        kept = [] if guidelines is None else [f"guidelines {list(guidelines)}"]
        kept += ["known users"] if known_users_only else []
        what = "no triples" + (f" left after keeping {' and '.join(kept)}" if kept else "")
        raise InputError(path, None, str(path), what)
    for name in TRIPLET_COLUMNS:
        if table.column(name).null_count:
            raise InputError(path, name, "null", f"{table.column(name).null_count} null values")
    profile = table.column("profile").combine_chunks()
    offsets = profile.offsets.to_numpy().astype(np.int64)
    offsets -= offsets[0]
    if profile.flatten().null_count:
        raise InputError(path, "profile", "null", "profiles contain null item indexes")
    values = profile.flatten().to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    lengths = np.diff(offsets)
    if not allow_empty_profiles and (lengths == 0).any():
        row = int(np.flatnonzero(lengths == 0)[0])
        raise InputError(path, "profile", f"row {row}: []", "empty profile")

    def column(name: str) -> np.ndarray:
        return table.column(name).to_numpy().astype(np.int32, copy=False)

    positive, negative, user = column("positive"), column("negative"), column("user")
    for name, array in (("profile", values), ("positive", positive), ("negative", negative)):
        check_item_indexes(array, n_items, path, name)
    if (user < -1).any():
        raise InputError(path, "user", int(user[user < -1][0]), "user index below -1")
    guideline = None
    if "guideline" in table.column_names:
        guideline = table.column("guideline").to_numpy(zero_copy_only=False)
    return Triples(offsets, values, positive, negative, user, guideline)


def constant_strings(value: str, n: int) -> pa.Array:
    """A string array repeating ``value`` n times, built without Python objects per row."""
    dictionary = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([value]))
    return dictionary.cast(pa.string())


def build_profiles(
    rng: np.random.Generator,
    source: np.ndarray,
    start: np.ndarray,
    length: np.ndarray,
    skip: np.ndarray | None,
    keep: np.ndarray | None,
    max_profile: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Profiles cut from ``source``: row r is ``source[start[r]:start[r] + length[r]]``.

    ``skip[r]`` (an index local to the row's range, or -1) is left out of the
    profile (the hidden positive of D1 and of random sampling). A profile with
    more than ``max_profile`` items is replaced by a uniformly random subset of
    ``max_profile`` of them, drawn afresh for every triple, so that the many
    triples of a heavy buyer together still cover all of their items;
    ``keep[r]`` (local index or -1) is always part of the subset (D4's
    positive, which belongs to its profile by definition). Items of a
    subsampled profile are in random order. ``max_profile=None`` keeps every
    profile whole, as the paper defines them. Returns (offsets int64, values int32).
    """
    n = len(start)
    if max_profile is None:
        max_profile = int(np.max(length, initial=0)) + 1
    start = np.asarray(start, dtype=np.int64)
    length = np.asarray(length, dtype=np.int64)
    has_skip = np.zeros(n, dtype=bool) if skip is None else np.asarray(skip) >= 0
    candidates = length - has_skip  # items the profile may contain
    out_len = np.minimum(candidates, max_profile)
    offsets = offsets_from_lengths(out_len)
    is_long = candidates > max_profile
    short = np.flatnonzero(~is_long)

    # Short rows: the whole range minus the skipped element.
    src_short = ranges(start[short], length[short])
    if has_skip[short].any():
        full = offsets_from_lengths(length[short])
        with_skip = np.flatnonzero(has_skip[short])
        drop = np.ones(len(src_short), dtype=bool)
        drop[full[with_skip] + np.asarray(skip)[short[with_skip]]] = False
        src_short = src_short[drop]
    if not is_long.any():
        return offsets, source[src_short].astype(np.int32, copy=False)

    # Long rows: a random subset of the candidates (skip is not a candidate).
    long_rows = np.flatnonzero(is_long)
    keep_c = np.full(len(long_rows), -1, dtype=np.int64)
    if keep is not None:
        k = np.asarray(keep, dtype=np.int64)[long_rows]
        sk = np.asarray(skip, dtype=np.int64)[long_rows] if skip is not None else np.full(len(long_rows), -1)
        keep_c = np.where(k >= 0, k - ((sk >= 0) & (k > sk)), -1)
    picks = _subsample(rng, candidates[long_rows], keep_c, max_profile)  # (rows, max_profile) candidate indexes
    if skip is not None:
        sk = np.asarray(skip, dtype=np.int64)[long_rows, None]
        picks += (sk >= 0) & (picks >= sk)
    src_long = (start[long_rows, None] + picks).ravel()

    values = np.empty(int(offsets[-1]), dtype=np.int32)
    long_element = np.repeat(is_long, out_len)
    values[~long_element] = source[src_short]
    values[long_element] = source[src_long]
    return offsets, values


def _subsample(rng: np.random.Generator, candidates: np.ndarray, keep: np.ndarray, m: int) -> np.ndarray:
    """For each row, m distinct indexes in [0, candidates) including ``keep`` (>= 0); shape (rows, m).

    Floyd's algorithm run on all rows at once: step s draws r in [0, top] with
    top = pool - m + s and takes r, or top itself when r is already taken, so
    every m-subset is equally likely. A per-row boolean matrix answers "taken?";
    the cost is proportional to the output, not to the profile lengths squared.
    With a kept index the other m - 1 are drawn from the remaining candidates.
    """
    n = len(candidates)
    out = np.empty((n, m), dtype=np.int64)
    width_all = int(candidates.max())
    chunk = max(1, _SUBSAMPLE_CHUNK_BYTES // width_all)
    for lo in range(0, n, chunk):
        size = candidates[lo : lo + chunk]
        kept = keep[lo : lo + chunk]
        rows = len(size)
        width = int(size.max())
        has_keep = kept >= 0
        pool = size - has_keep  # candidates other than the kept one
        need = m - has_keep
        # Pool index -> candidate index: skip over the kept one (a sentinel >= size when none).
        kept_or_end = np.where(has_keep, kept, size)
        base = np.arange(rows, dtype=np.int64) * width
        last = base + size - 1
        marked = np.zeros(rows * width, dtype=bool)
        block = out[lo : lo + chunk]
        for step in range(m):
            top = pool - need + step  # rows with a kept index go one past their pool on the last step
            r = (rng.random(rows) * (top + 1)).astype(np.int64)
            np.minimum(r, top, out=r)
            r_cell = base + r + (r >= kept_or_end)
            top_cell = base + top + (top >= kept_or_end)
            np.minimum(r_cell, last, out=r_cell)  # only matters for the overridden last step
            np.minimum(top_cell, last, out=top_cell)
            cell = np.where(marked[r_cell], top_cell, r_cell)
            if step == m - 1:
                cell = np.where(has_keep, base + kept, cell)
            marked[cell] = True
            block[:, step] = cell - base
    return out
