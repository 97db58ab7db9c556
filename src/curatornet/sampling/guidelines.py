"""The six sampling guidelines D1-D6 of paper section 3.5 and plain random BPR sampling.

Notation (paper Table 1), always over the TRAINING purchases: I+_u the items
of user u, A_u and VC_u the artists and visual clusters of those items, P_{u,k}
the k-th basket, I+_{u,k} the items of baskets 0..k. A negative j is
*admissible* for u when j not in I+_u, a_j not in A_u and vc_j not in VC_u.

- d1_basket: profile P_{u,k} minus i, positive i in P_{u,k} (|P_{u,k}| >= 2), j admissible.
- d2_next_basket: profile I+_{u,k}, positive i in P_{u,k+1}, j admissible.
- d3_artist_cluster: profile I+_u, positive i not in I+_u with a_i in A_u and vc_i in VC_u, j admissible.
- d4_profile: profile I+_u, positive i in I+_u, j not in I+_u.
- d5_single_item: profile {i}, positive i, j != i.
- d6_same_artist: profile {i'}, positive i != i' with a_i = a_i', j with a_j != a_i'.
- random: users with >= 2 items, positive i in I+_u, profile I+_u minus i, j not in I+_u
  (CuratorNet's random sampling: it needs a profile left after hiding i).
- bpr: every user with a training item, positive i in I+_u, j not in I+_u, no profile
  (plain BPR sampling, Rendle et al., for VBPR, which reads no profile).

How triples are drawn: every guideline enumerates its *cases* (a profile and
a positive, e.g. one (basket, hidden item) pair for D1) and drops the cases
that cannot be completed (no admissible negative, no second basket, ...),
counting them per reason. A triple is a case drawn uniformly with replacement
plus a negative drawn uniformly among that case's admissible negatives
(rejection sampling, then an exact draw for the few entries still rejected:
uniform either way). Triples whose hash repeats an earlier one are
redrawn, so a shard holds distinct triples: first ``n_train`` training
triples, then ``n_valid`` validation triples that repeat none of them. If the
guideline cannot supply that many distinct triples the shard is short and
the log says so. Profiles longer than ``max_profile`` are randomly
subsampled (see :func:`curatornet.sampling.triples.build_profiles`).

This module registers D1-D6 in the guideline registry
(:data:`curatornet.registry.GUIDELINES`); a guideline of a plugin is one more
record there. The random and BPR shards are the sampling schemes' own
(:data:`SCHEMES`), not guidelines: they are never merged with them.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from curatornet.artifacts import BPR_SHARD, RANDOM_SHARD
from curatornet.errors import InputError
from curatornet.registry import GUIDELINES, GuidelineSpec, resolve
from curatornet.sampling.arrays import first_occurrence_mask, offsets_from_lengths, ranges, row_ids, sorted_contains
from curatornet.sampling.data import SamplingData
from curatornet.sampling.triples import Triples, build_profiles

log = logging.getLogger(__name__)

#: Cells (users x items) of the boolean matrix of allowed negatives built per chunk of users.
_CHUNK_CELLS = 1 << 24
#: Redraw rounds before a shard is declared short of distinct triples.
_MAX_ROUNDS = 50
#: Most triples drawn at once (bounds the temporary arrays of big shards).
_DRAW_CHUNK = 2_000_000
#: Rejection rounds for negatives before the exact draw takes over.
_REJECTION_ROUNDS = 8


def random_budget(budgets: dict[str, dict[str, int]]) -> dict[str, int]:
    """The random shard's budget: the sum over the registered guidelines of each split."""
    names = GUIDELINES.names()
    return {split: int(sum(budgets[g][split] for g in names if g in budgets)) for split in ("train", "valid")}


class NegativeSampler:
    """Uniform draws of a negative for each user among the items allowed for that user.

    ``admissible=True``: j not in I+_u, a_j not in A_u, vc_j not in VC_u (D1-D3);
    ``admissible=False``: only j not in I+_u (D4, random). Draws are rejection
    sampled; for the rare leftovers, the allowed items of a chunk of users form
    a boolean matrix and the r-th allowed item of a row is found by a search in
    the running count of the flattened matrix.

    The sets A_u and VC_u are kept as sorted ``user * width + value`` keys, so
    memory grows with the purchases, not with users x artists (a dense matrix
    would take 21 GB at 100 times UGallery), and :meth:`counts` is exact
    arithmetic on those pairs instead of a scan of users x items.
    """

    def __init__(self, data: SamplingData, admissible: bool):
        self.data = data
        self.admissible = admissible
        sizes = data.user_sizes()
        self._sizes = sizes
        if admissible:
            owner = row_ids(sizes)
            self._artist_keys = np.unique(owner * data.n_artists + data.artist[data.user_items])
            self._cluster_keys = np.unique(owner * data.n_clusters + data.cluster[data.user_items])
        else:
            self._owned = data.owned_keys()
        self._chunk = max(1, _CHUNK_CELLS // data.n_items)

    @staticmethod
    def _rows_of(keys: np.ndarray, width: int, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position in ``users``, value) of every key that belongs to one of ``users``."""
        starts = np.searchsorted(keys, users * width)
        lengths = np.searchsorted(keys, (users + 1) * width) - starts
        return row_ids(lengths), keys[ranges(starts, lengths)] % width

    def allowed(self, users: np.ndarray) -> np.ndarray:
        """Boolean matrix (len(users), n_items): may item j be a negative for the user?"""
        d = self.data
        users = np.asarray(users, dtype=np.int64)
        if self.admissible:
            # The chunk's users x artists (and x clusters) tables are small; expand them to items.
            rows, artists = self._rows_of(self._artist_keys, d.n_artists, users)
            bought = np.zeros((len(users), d.n_artists), dtype=bool)
            bought[rows, artists] = True
            allowed = ~bought[:, d.artist]
            rows, clusters = self._rows_of(self._cluster_keys, d.n_clusters, users)
            bought = np.zeros((len(users), d.n_clusters), dtype=bool)
            bought[rows, clusters] = True
            allowed &= ~bought[:, d.cluster]
        else:
            allowed = np.ones((len(users), d.n_items), dtype=bool)
        lengths = self._sizes[users]
        allowed[row_ids(lengths), d.user_items[ranges(d.user_ptr[users], lengths)]] = False
        return allowed

    def counts(self) -> np.ndarray:
        """Number of allowed negatives of every user."""
        d = self.data
        if not self.admissible:
            return (d.n_items - self._sizes).astype(np.int64)  # I+_u holds distinct items
        # Excluded items: those of an artist in A_u plus those of a cluster in VC_u,
        # minus those counted twice (artist in A_u and cluster in VC_u). I+_u is
        # inside the first set, so it needs no term of its own.
        artist_user, artist = np.divmod(self._artist_keys, d.n_artists)
        cluster_user, cluster = np.divmod(self._cluster_keys, d.n_clusters)
        artist_size = np.bincount(d.artist, minlength=d.n_artists)
        cluster_size = np.bincount(d.cluster, minlength=d.n_clusters)
        excluded = np.bincount(artist_user, weights=artist_size[artist], minlength=d.n_users)
        excluded += np.bincount(cluster_user, weights=cluster_size[cluster], minlength=d.n_users)
        # Items per (artist, cluster) group, grouped by artist.
        group, group_size = np.unique(d.artist.astype(np.int64) * d.n_clusters + d.cluster, return_counts=True)
        groups_per_artist = np.bincount(group // d.n_clusters, minlength=d.n_artists)
        group_ptr = offsets_from_lengths(groups_per_artist)
        # Every (user, artist in A_u) pair meets each group of that artist.
        picked = ranges(group_ptr[artist], groups_per_artist[artist])
        pair_user = np.repeat(artist_user, groups_per_artist[artist])
        twice = sorted_contains(self._cluster_keys, pair_user * d.n_clusters + group[picked] % d.n_clusters)
        excluded -= np.bincount(pair_user[twice], weights=group_size[picked][twice], minlength=d.n_users)
        return d.n_items - np.rint(excluded).astype(np.int64)

    def is_allowed(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Element-wise: may ``items[k]`` be a negative for ``users[k]``?"""
        d = self.data
        users = users.astype(np.int64)
        if self.admissible:
            # j in I+_u implies a_j in A_u, so the artist test also excludes u's own items.
            allowed = ~sorted_contains(self._artist_keys, users * d.n_artists + d.artist[items])
            allowed &= ~sorted_contains(self._cluster_keys, users * d.n_clusters + d.cluster[items])
            return allowed
        return ~sorted_contains(self._owned, users * d.n_items + items)

    def sample(self, rng: np.random.Generator, users: np.ndarray) -> np.ndarray:
        """One negative per entry of ``users``, uniform over that user's allowed items.

        Rejection first (cheap, and most items are allowed for most users);
        the few entries still rejected after a few rounds get an exact draw.
        """
        users = np.asarray(users, dtype=np.int64)
        out = rng.integers(0, self.data.n_items, size=len(users))
        todo = np.flatnonzero(~self.is_allowed(users, out))
        for _ in range(_REJECTION_ROUNDS):
            if len(todo) == 0:
                break
            out[todo] = rng.integers(0, self.data.n_items, size=len(todo))
            todo = todo[~self.is_allowed(users[todo], out[todo])]
        if len(todo):
            out[todo] = self._sample_exact(rng, users[todo])
        return out.astype(np.int32)

    def _sample_exact(self, rng: np.random.Generator, users: np.ndarray) -> np.ndarray:
        """The r-th allowed item of each user's row, r uniform (one boolean matrix per chunk of users)."""
        n_items = self.data.n_items
        out = np.empty(len(users), dtype=np.int64)
        order = np.argsort(users, kind="stable")
        sorted_users = users[order]
        is_new = np.ones(len(users), dtype=bool)
        is_new[1:] = sorted_users[1:] != sorted_users[:-1]
        starts = np.append(np.flatnonzero(is_new), len(users))
        distinct = sorted_users[starts[:-1]]
        slot = np.cumsum(is_new) - 1  # index of each sorted entry's user in `distinct`
        for lo in range(0, len(distinct), self._chunk):
            hi = min(lo + self._chunk, len(distinct))
            allowed = self.allowed(distinct[lo:hi])
            running = np.cumsum(allowed, axis=None, dtype=np.int64)  # flattened, row after row
            row_total = running[n_items - 1 :: n_items]
            before = np.concatenate(([0], row_total[:-1]))  # allowed items in earlier rows
            counts = row_total - before
            entries = slice(starts[lo], starts[hi])
            local = slot[entries] - lo
            if np.any(counts[local] == 0):
                raise RuntimeError("a user without allowed negatives reached the sampler")
            rank = rng.integers(0, counts[local])
            flat = np.searchsorted(running, before[local] + rank + 1)  # first cell reaching that count
            out[order[entries]] = flat - local * n_items
        return out


@dataclass
class CaseTable:
    """Cases (user, positive, where its profile is) of the user-based guidelines."""

    user: np.ndarray  # int32
    positive: np.ndarray  # int32
    source: np.ndarray  # int32 flat item array the profiles are cut from
    start: np.ndarray  # int64
    length: np.ndarray  # int64
    skip: np.ndarray | None  # int64 local index left out of the profile, -1 for none
    keep: np.ndarray | None  # int64 local index kept when subsampling, -1 for none

    def __len__(self) -> int:
        return len(self.user)

    def select(self, mask: np.ndarray) -> CaseTable:
        pick = lambda a: None if a is None else a[mask]
        return CaseTable(
            self.user[mask],
            self.positive[mask],
            self.source,
            self.start[mask],
            self.length[mask],
            pick(self.skip),
            pick(self.keep),
        )


@dataclass
class GuidelineSampler(ABC):
    """Draws triples of one guideline; ``skipped`` counts the cases it could not use, per reason.

    A guideline's builder returns one: ``n_cases`` cases to draw from, and
    :meth:`draw`, which every sampler implements.
    """

    name: str
    n_cases: int
    skipped: dict[str, int] = field(default_factory=dict)

    @abstractmethod
    def draw(self, rng: np.random.Generator, n: int, max_profile: int | None) -> Triples:
        """``n`` triples drawn with replacement (profiles longer than ``max_profile`` subsampled)."""


@dataclass
class UserCaseSampler(GuidelineSampler):
    cases: CaseTable | None = None
    negatives: NegativeSampler | None = None

    def draw(self, rng: np.random.Generator, n: int, max_profile: int | None) -> Triples:
        c = self.cases
        rows = rng.integers(0, len(c), size=n)
        take = lambda a: None if a is None else a[rows]
        offsets, values = build_profiles(
            rng, c.source, c.start[rows], c.length[rows], take(c.skip), take(c.keep), max_profile
        )
        user = c.user[rows]
        negative = self.negatives.sample(rng, user)
        return Triples(offsets, values, c.positive[rows], negative, user)


@dataclass
class SingleItemSampler(GuidelineSampler):
    """D5: profile {i}, positive i, any other item as negative."""

    n_items: int = 0

    def draw(self, rng: np.random.Generator, n: int, max_profile: int | None) -> Triples:
        item = rng.integers(0, self.n_items, size=n)
        negative = (item + 1 + rng.integers(0, self.n_items - 1, size=n)) % self.n_items  # uniform over j != i
        return Triples.single_items(item, item, negative)


@dataclass
class SameArtistSampler(GuidelineSampler):
    """D6: profile {i'}, positive another item by the artist of i', negative an item by another artist."""

    by_artist: np.ndarray | None = None  # items sorted by artist
    group_start: np.ndarray | None = None  # per item: where its artist's run starts in by_artist
    group_size: np.ndarray | None = None  # per item: number of items of its artist
    rank: np.ndarray | None = None  # per item: its position inside its artist's run
    cumulative_weight: np.ndarray | None = None  # running sum of (group_size - 1), eligible items only

    def draw(self, rng: np.random.Generator, n: int, max_profile: int | None) -> Triples:
        n_items = len(self.by_artist)
        # i' with probability proportional to its number of positives: uniform over (i', i) pairs.
        anchor = np.searchsorted(
            self.cumulative_weight, rng.integers(0, self.cumulative_weight[-1], size=n), side="right"
        )
        start, size = self.group_start[anchor], self.group_size[anchor]
        other = rng.integers(0, size - 1)
        other += other >= self.rank[anchor]  # skip i' itself
        positive = self.by_artist[start + other]
        outside = rng.integers(0, n_items - size)
        outside += size * (outside >= start)  # jump over the artist's run
        negative = self.by_artist[outside]
        return Triples.single_items(anchor, positive, negative)


def shard_spec(name: str) -> GuidelineSpec:
    """The record of a shard: a registered guideline, or a sampling scheme's shard (random, bpr)."""
    if name in SCHEMES:
        return SCHEMES[name]
    return GUIDELINES.get(name, field_name="guideline")


def make_sampler(data: SamplingData, guideline: str) -> GuidelineSampler:
    """Enumerate the cases of ``guideline`` (a registered guideline, or the random or bpr shard)."""
    spec = shard_spec(guideline)
    if "purchases" in spec.needs:
        data.require_purchases(guideline)
    if "clusters" in spec.needs:
        data.require_clusters(guideline)
    sampler = resolve(spec.build)(data)
    if not isinstance(sampler, GuidelineSampler):
        raise InputError(None, "guideline", guideline, f"its builder returned a {type(sampler).__name__}")
    return sampler


def _users_cases(
    data: SamplingData, guideline: str, cases: CaseTable, admissible: bool, skipped: dict
) -> UserCaseSampler:
    """Drop the cases whose user has no allowed negative and wrap the rest."""
    negatives = NegativeSampler(data, admissible)
    counts = negatives.counts()
    ok = counts[cases.user] > 0
    skipped["cases without an admissible negative" if admissible else "cases without an item outside I+_u"] = int(
        (~ok).sum()
    )
    cases = cases.select(ok)
    return UserCaseSampler(guideline, len(cases), skipped, cases, negatives)


def _d1_basket(data: SamplingData) -> GuidelineSampler:
    sizes = np.diff(data.basket_ptr)
    baskets = np.flatnonzero(sizes >= 2)
    skipped = {"baskets with fewer than 2 items": int((sizes < 2).sum())}
    b = np.repeat(baskets, sizes[baskets])
    pos = ranges(data.basket_ptr[baskets], sizes[baskets])
    cases = CaseTable(
        user=data.basket_user[b],
        positive=data.basket_items[pos],
        source=data.basket_items,
        start=data.basket_ptr[b],
        length=sizes[b],
        skip=pos - data.basket_ptr[b],
        keep=None,
    )
    return _users_cases(data, "d1_basket", cases, True, skipped)


def _d2_next_basket(data: SamplingData) -> GuidelineSampler:
    bu, bn = data.basket_user, data.basket_number
    has_next = np.zeros(data.n_baskets, dtype=bool)
    has_next[:-1] = (bu[1:] == bu[:-1]) & (bn[1:] == bn[:-1] + 1)
    users_with_items = int((data.user_sizes() > 0).sum())
    users_with_next = len(np.unique(bu[has_next]))
    skipped = {"users with fewer than 2 training baskets": users_with_items - users_with_next}
    current = np.flatnonzero(has_next)  # basket k; the positives come from basket k + 1
    next_sizes = np.diff(data.basket_ptr)[current + 1]
    b = np.repeat(current, next_sizes)
    pos = ranges(data.basket_ptr[current + 1], next_sizes)
    user = bu[b]
    start = data.first_ptr[user]
    cases = CaseTable(
        user=user,
        positive=data.basket_items[pos],
        source=data.first_items,
        start=start,
        length=data.first_end[b] - start,
        skip=None,
        keep=None,
    )
    return _users_cases(data, "d2_next_basket", cases, True, skipped)


def _d3_artist_cluster(data: SamplingData) -> GuidelineSampler:
    sizes = data.user_sizes()
    owner = row_ids(sizes)
    # Distinct (user, artist) pairs of the training purchases.
    pair = np.unique(owner * data.n_artists + data.artist[data.user_items])
    pair_user, pair_artist = pair // data.n_artists, pair % data.n_artists
    by_artist = np.argsort(data.artist, kind="stable")
    artist_size = np.bincount(data.artist, minlength=data.n_artists)
    artist_ptr = offsets_from_lengths(artist_size)
    # Every item of every artist u bought from: keep those in VC_u and not in I+_u.
    cand_user = np.repeat(pair_user, artist_size[pair_artist])
    cand_item = by_artist[ranges(artist_ptr[pair_artist], artist_size[pair_artist])]
    user_cluster = np.zeros((data.n_users, data.n_clusters), dtype=bool)
    user_cluster[owner, data.cluster[data.user_items]] = True
    ok = user_cluster[cand_user, data.cluster[cand_item]]
    ok &= ~sorted_contains(data.owned_keys(), cand_user * data.n_items + cand_item)
    cand_user, cand_item = cand_user[ok], cand_item[ok]
    users_with_items = int((sizes > 0).sum())
    skipped = {
        "users without an unbought item of their artists and clusters": users_with_items - len(np.unique(cand_user))
    }
    cases = CaseTable(
        user=cand_user.astype(np.int32),
        positive=cand_item.astype(np.int32),
        source=data.user_items,
        start=data.user_ptr[cand_user],
        length=sizes[cand_user],
        skip=None,
        keep=None,
    )
    return _users_cases(data, "d3_artist_cluster", cases, True, skipped)


def _d4_profile(data: SamplingData) -> GuidelineSampler:
    sizes = data.user_sizes()
    user = row_ids(sizes)
    local = np.arange(len(data.user_items)) - data.user_ptr[user]
    cases = CaseTable(
        user=user.astype(np.int32),
        positive=data.user_items,
        source=data.user_items,
        start=data.user_ptr[user],
        length=sizes[user],
        skip=None,
        keep=local,
    )
    return _users_cases(data, "d4_profile", cases, False, {})


def _random(data: SamplingData) -> GuidelineSampler:
    sizes = data.user_sizes()
    skipped = {"users with a single training item": int((sizes == 1).sum())}
    user = row_ids(sizes)
    ok = sizes[user] >= 2
    local = np.arange(len(data.user_items)) - data.user_ptr[user]
    cases = CaseTable(
        user=user.astype(np.int32),
        positive=data.user_items,
        source=data.user_items,
        start=data.user_ptr[user],
        length=sizes[user],
        skip=local,
        keep=None,
    ).select(ok)
    return _users_cases(data, RANDOM_SHARD, cases, False, skipped)


def _bpr(data: SamplingData) -> GuidelineSampler:
    sizes = data.user_sizes()
    user = row_ids(sizes)
    cases = CaseTable(
        user=user.astype(np.int32),
        positive=data.user_items,
        source=data.user_items,
        start=data.user_ptr[user],
        length=np.zeros(len(user), dtype=np.int64),  # no profile: VBPR knows the user by its index
        skip=None,
        keep=None,
    )
    return _users_cases(data, BPR_SHARD, cases, False, {})


def _d5_single_item(data: SamplingData) -> GuidelineSampler:
    n = data.n_items
    if n < 2:
        return SingleItemSampler("d5_single_item", 0, {"items without another item": n}, n)
    return SingleItemSampler("d5_single_item", n, {}, n)


def _d6_same_artist(data: SamplingData) -> GuidelineSampler:
    n = data.n_items
    by_artist = np.argsort(data.artist, kind="stable")
    artist_size = np.bincount(data.artist, minlength=data.n_artists)
    artist_ptr = offsets_from_lengths(artist_size)
    size = artist_size[data.artist]
    group_start = artist_ptr[data.artist]
    rank = np.empty(n, dtype=np.int64)
    rank[by_artist] = np.arange(n) - artist_ptr[data.artist[by_artist]]
    lonely = size < 2
    everything = size == n  # no item of another artist to use as negative
    skipped = {
        "items whose artist has no other item": int(lonely.sum()),
        "items with no other artist": int((everything & ~lonely).sum()),
    }
    weight = np.where(lonely | everything, 0, size - 1)
    cumulative = np.cumsum(weight)
    n_cases = int(cumulative[-1]) if n else 0
    return SameArtistSampler("d6_same_artist", n_cases, skipped, by_artist, group_start, size, rank, cumulative)


_PURCHASES = frozenset({"purchases"})
_PURCHASES_AND_CLUSTERS = frozenset({"purchases", "clusters"})

#: D1-D6 in the paper's order (the order in which the merge keeps the first copy of a triple).
for _spec in (
    GuidelineSpec("d1_basket", _d1_basket, _PURCHASES_AND_CLUSTERS),
    GuidelineSpec("d2_next_basket", _d2_next_basket, _PURCHASES_AND_CLUSTERS),
    GuidelineSpec("d3_artist_cluster", _d3_artist_cluster, _PURCHASES_AND_CLUSTERS),
    GuidelineSpec("d4_profile", _d4_profile, _PURCHASES),
    GuidelineSpec("d5_single_item", _d5_single_item, single_item_profiles=True),
    GuidelineSpec("d6_same_artist", _d6_same_artist, single_item_profiles=True),
):
    GUIDELINES.register(_spec)

#: The sampling schemes' shards (section 3.3), sampled beside the guidelines but never merged with them:
#: triples with profiles over users with two or more training items (CuratorNet's random sampling), and
#: BPR triples without profiles over every user with a training item (random sampling of models that read
#: no profile, VBPR). Their budget is the sum of the guidelines'.
SCHEMES: dict[str, GuidelineSpec] = {
    RANDOM_SHARD: GuidelineSpec(RANDOM_SHARD, _random, _PURCHASES),
    BPR_SHARD: GuidelineSpec(BPR_SHARD, _bpr, _PURCHASES, single_item_profiles=True),
}


@dataclass
class ShardReport:
    guideline: str
    cases: int
    skipped: dict[str, int]
    requested: dict[str, int]
    produced: dict[str, int]
    rounds: dict[str, int]  # draw rounds per split


def _fill(
    sampler: GuidelineSampler,
    rng: np.random.Generator,
    target: int,
    max_profile: int | None,
    split: str,
    taken: np.ndarray,
) -> tuple[list[pa.Table], np.ndarray, int]:
    """``target`` distinct triples whose hashes are not in ``taken`` (sorted).

    Draws at most ``_DRAW_CHUNK`` triples at a time (bounding the temporary
    arrays) and converts each accepted chunk to Arrow at once, so the shard is
    never held twice. Returns (tables, hashes, draw rounds).
    """
    tables: list[pa.Table] = []
    accepted: list[np.ndarray] = []
    have = 0
    seen = taken  # sorted hashes that new triples must not repeat
    rounds = 0
    yield_rate = 0.95  # share of drawn triples that turn out new; updated after every round
    while have < target and rounds < _MAX_ROUNDS and sampler.n_cases > 0:
        missing = target - have
        size = min(int(missing / max(yield_rate, 0.05) * 1.02) + 16, _DRAW_CHUNK)  # a little extra for repeats
        batch = sampler.draw(rng, size, max_profile)
        h = batch.hashes()
        keep = np.flatnonzero(first_occurrence_mask(h) & ~sorted_contains(seen, h))
        yield_rate = len(keep) / len(h)
        keep = keep[:missing]
        rounds += 1
        if len(keep) == 0:
            break
        if len(keep) < len(batch):
            batch = batch.take(keep)
        tables.append(batch.to_arrow(split, h[keep]))
        accepted.append(h[keep])
        have += len(keep)
        del batch
        if have < target:
            seen = np.sort(np.concatenate((seen, h[keep])))
        if rounds >= 3 and yield_rate < 0.005:
            break  # the guideline is (nearly) out of distinct triples
    hashes = np.concatenate(accepted) if accepted else np.empty(0, dtype=np.uint64)
    return tables, hashes, rounds


def sample_shard(
    data: SamplingData,
    guideline: str,
    n_train: int,
    n_valid: int,
    seed: int,
    max_profile: int | None,
    exclude: np.ndarray | None = None,
) -> tuple[pa.Table, ShardReport]:
    """Sample one shard: ``n_train`` training then ``n_valid`` validation triples (all distinct).

    ``seed`` is used as given (see :meth:`curatornet.registry.GuidelineSpec.seed` for a shard's seed).
    ``exclude``: hashes no triple may repeat (a headroom shard continues its guideline's shard).
    Returns the table (``curatornet.artifacts.TRIPLETS_SCHEMA``) and a report
    of the cases, skips and counts, which is also logged.
    """
    for name, value in (("train", n_train), ("valid", n_valid)):
        if value < 0:
            raise InputError(None, f"sampling.budgets.{guideline}.{name}", value, "budget must not be negative")
    if max_profile is not None and max_profile < 1:
        raise InputError(None, "sampling.max_profile", max_profile, "must be at least 1")
    sampler = make_sampler(data, guideline)
    rng = np.random.default_rng(seed)
    log.info("%s: %d cases to draw from", guideline, sampler.n_cases)
    for reason, count in sampler.skipped.items():
        log.info("%s: skipped %d %s", guideline, count, reason)
    taken = np.sort(np.asarray(exclude, dtype=np.uint64)) if exclude is not None else np.empty(0, dtype=np.uint64)
    train, train_hashes, train_rounds = _fill(sampler, rng, n_train, max_profile, "train", taken)
    valid, valid_hashes, valid_rounds = _fill(
        sampler, rng, n_valid, max_profile, "valid", np.sort(np.concatenate([taken, train_hashes]))
    )
    report = ShardReport(
        guideline,
        sampler.n_cases,
        dict(sampler.skipped),
        {"train": n_train, "valid": n_valid},
        {"train": len(train_hashes), "valid": len(valid_hashes)},
        {"train": train_rounds, "valid": valid_rounds},
    )
    for split, want in report.requested.items():
        got = report.produced[split]
        if got < want:
            log.warning(
                "%s: only %d distinct %s triples of %d requested (the guideline has too few)",
                guideline,
                got,
                split,
                want,
            )
        else:
            log.info("%s: %d %s triples in %d draw round(s)", guideline, got, split, report.rounds[split])
    table = pa.concat_tables(train + valid) if train or valid else Triples.empty().to_arrow("train")
    return table, report
