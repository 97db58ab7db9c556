"""A UGallery-like data set generator (deterministic from a seed).

The generative model, in the order it runs (docs/synthetic_data.md has the
parameters and a comparison with the real statistics):

1. Catalogue. Artists get a heavy-tailed (log-normal) number of items and one
   visual style each. Whether an artist makes one-of-a-kind works or
   reprints is a per-artist Beta-distributed propensity. Artists upload in
   batches; batch times follow a flat density over the sales years plus an
   exponentially thinning tail back to 2007. Items get a log-normal appeal.
2. Users. Baskets per user and items per basket follow truncated power laws,
   plus an outlier buyer far beyond the power law (as in the real log). Each
   user has a few visual tastes (styles) and favourite artists drawn from
   those styles. Basket times: a random start plus log-normal gaps.
3. Purchases. Week by week, every purchase slot picks one item from the
   current inventory with weights for appeal, a preference for recent
   uploads, the basket's focus style, the user's other tastes, favourite
   artists, (from a basket's second item on) the artist of the basket's first
   item, and revisits of artists the user bought from in earlier baskets
   (artist loyalty, stronger the more baskets a user has). The draw never
   scores the whole inventory: it picks a group of items by its weight, then
   an item, and rejects unavailable ones, so its cost grows linearly with the
   data set. One-of-a-kind items leave the inventory once sold; when two
   slots draw the same one, the earlier keeps it and the other draws again.
4. Embeddings: the style model of :mod:`curatornet.data.embeddings`, rendered
   chunk by chunk when written.

Everything is vectorised over items, users and slots; the only loops run over
weeks, over the position inside a basket and over draw attempts.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtri

from curatornet.data.embeddings import (
    FeatureRenderer,
    StyleModel,
    item_latents,
    style_centres,
    write_embeddings_npy,
)
from curatornet.data.layout import RAW_EMBEDDINGS, RAW_INVENTORY, RAW_PURCHASES
from curatornet.io import write_csv

log = logging.getLogger(__name__)

MS_PER_DAY = 86_400_000


@dataclass(frozen=True)
class GeneratorParameters:
    """All knobs of the generator. The defaults are the UGallery-sized preset."""

    n_items: int = 7742
    n_artists: int = 735
    n_users: int = 2919
    n_styles: int = 40
    #: Dirichlet concentration of style sizes (smaller: more unequal styles).
    style_concentration: float = 2.0

    # Items per artist: 1 for a share of artists, else 1 + log-normal (>= 1); rescaled to n_items.
    single_item_artist_share: float = 0.21
    artist_size_median: float = 6.2
    artist_size_sigma: float = 1.1
    #: Mean and concentration of the per-artist share of one-of-a-kind works.
    one_of_a_kind_share: float = 0.78
    one_of_a_kind_concentration: float = 2.0
    #: Share of purchase slots that ask for a one-of-a-kind work.
    one_of_a_kind_demand: float = 0.82
    appeal_sigma_original: float = 0.5
    appeal_sigma_reprint: float = 1.2

    # Time line.
    upload_start: str = "2007-01-01"
    upload_end: str = "2018-06-01"
    sales_start: str = "2014-01-01"
    sales_end: str = "2018-06-01"  # exclusive: the last sale is on 2018-05-31
    #: Share of upload batches before the sales start, and how fast they thin out going back.
    early_upload_share: float = 0.19
    early_upload_decay_days: float = 500.0
    upload_batch_size: int = 4

    # Users and baskets.
    #: Share of users with a single basket; the others have 1 + a power-law number more.
    single_basket_share: float = 0.75
    baskets_per_user_exponent: float = 2.7
    baskets_per_user_shift: float = 1.0
    max_baskets_per_user: int = 60
    #: The real log has one buyer far beyond the power law (212 baskets; the next has 46).
    #: The outlier_buyers most active users (per unit of scale) get outlier_buyer_baskets baskets.
    outlier_buyers: int = 1
    outlier_buyer_baskets: int = 212
    basket_size_exponent: float = 3.0
    max_basket_size: int = 21
    basket_gap_median_days: float = 68.0
    basket_gap_sigma: float = 1.6

    # Taste.
    tastes_per_user: int = 3
    #: Probability that a secondary taste repeats the primary one (focused users).
    taste_repeat: float = 0.4
    #: Probability of each taste being a basket's focus.
    focus_weights: tuple[float, ...] = (0.6, 0.25, 0.15)
    favourite_artists: int = 2
    weight_focus_style: float = 2.5
    weight_user_style: float = 1.0
    weight_favourite_artist: float = 2.1
    weight_basket_artist: float = 5.5
    #: Artist loyalty: the share of a slot's weight that revisits an artist the user bought from in
    #: an earlier basket (split equally among them): at the user's second basket, its limit for very
    #: active buyers, the number of further baskets at which it is halfway there, and how sharply it rises.
    revisit_share_second: float = 0.13
    revisit_share_limit: float = 0.95
    revisit_half_baskets: float = 25.0
    revisit_rise_exponent: float = 2.0
    #: Log-weight lost per unit of log(1 + age / recency_days) since upload.
    recency_weight: float = 0.55
    recency_days: float = 60.0
    #: Log-weight lost when a slot's item is not of the kind it asked for.
    kind_penalty: float = 6.0

    # Embeddings.
    embedding_dim: int = 2048
    style_model: StyleModel = StyleModel()

    def __post_init__(self):
        for name in ("revisit_share_second", "revisit_share_limit"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), not {getattr(self, name)}")


PRESETS: dict[str, GeneratorParameters] = {
    "default": GeneratorParameters(),
    "tiny": GeneratorParameters(
        n_items=400,
        n_artists=40,
        n_users=160,
        n_styles=8,
        max_baskets_per_user=25,
        outlier_buyers=0,
        max_basket_size=8,
        focus_weights=(0.6, 0.25, 0.15),
    ),
}


def parameters_for(
    preset: str = "default", scale: float = 1.0, embedding_dim: int = 2048, **overrides
) -> GeneratorParameters:
    """A preset with users, items and artists multiplied by ``scale`` (styles stay fixed).

    An artist's works are then a ``scale`` times smaller part of their style, so
    the artist bonuses (favourites, the basket's first artist) grow by
    log(scale) to keep the pull they have at scale 1; the revisits are a share
    of a slot's weight and need no change. Per-user statistics then stay as at
    scale 1.
    """
    base = PRESETS[preset]
    changes = {
        "n_items": max(2, round(base.n_items * scale)),
        "n_artists": max(1, round(base.n_artists * scale)),
        "n_users": max(1, round(base.n_users * scale)),
        "outlier_buyers": round(base.outlier_buyers * scale),
        # Bonuses stay >= 0: the draw adds exp(bonus) - 1 times an artist's weight.
        "weight_favourite_artist": max(0.0, base.weight_favourite_artist + float(np.log(scale))),
        "weight_basket_artist": max(0.0, base.weight_basket_artist + float(np.log(scale))),
        "embedding_dim": embedding_dim,
    }
    return dataclasses.replace(base, **{**changes, **overrides})


@dataclass
class SyntheticDataset:
    """A generated data set in source form (ids are hex strings like the public release).

    The embeddings are rendered from the item latents when first asked for
    (``embeddings``), or chunk by chunk when written (``embedding_chunks``), so a
    large data set is written without holding its whole embedding matrix.
    """

    items: pd.DataFrame  # item_id, artist_id, upload_time, one_of_a_kind
    purchases: pd.DataFrame  # user_id, time, item_id
    item_style: np.ndarray  # planted style of every item (for tests and docs)
    user_tastes: np.ndarray  # (n_users, tastes_per_user) planted styles per user
    latents: np.ndarray  # (n_items, latent_dim) style-model latent of every item
    renderer: FeatureRenderer
    _embeddings: np.ndarray | None = dataclasses.field(default=None, repr=False)

    @property
    def embeddings(self) -> np.ndarray:
        """(n_items, dim) float32 in the order of items."""
        if self._embeddings is None:
            self._embeddings = self.renderer.render(self.latents)
        return self._embeddings

    def embedding_chunks(self) -> Iterator[np.ndarray]:
        if self._embeddings is not None:
            yield self._embeddings
        else:
            yield from self.renderer.chunks(self.latents)


# --------------------------------------------------------------------------- helpers


def stratified_uniform(rng: np.random.Generator, size: int) -> np.ndarray:
    """The midpoints of ``size`` equal strata of (0, 1), in random order.

    Heavy-tailed counts drawn through their inverse CDF from these have the
    same histogram (and the same maximum) for every seed; the seed only
    decides who gets which value. Plain draws made the totals of a whole data
    set swing by 10% between seeds.
    """
    return (rng.permutation(size) + 0.5) / max(size, 1)


def truncated_power_law(
    rng: np.random.Generator, exponent: float, maximum: int, size: int, shift: float = 0.0
) -> np.ndarray:
    """Integers 1..maximum with P(k) proportional to (k + shift)**-exponent (stratified draw)."""
    support = np.arange(1, maximum + 1)
    weights = (support + shift) ** -exponent
    cumulative = np.cumsum(weights / weights.sum())
    return support[np.minimum(np.searchsorted(cumulative, stratified_uniform(rng, size), side="right"), maximum - 1)]


def stratified_lognormal(rng: np.random.Generator, median: float, sigma: float, size: int) -> np.ndarray:
    return median * np.exp(sigma * ndtri(stratified_uniform(rng, size)))


def apportion(weights: np.ndarray, total: int) -> np.ndarray:
    """Positive integers proportional to ``weights`` summing to ``total`` (largest remainders)."""
    if total < len(weights):
        raise ValueError(f"cannot give {len(weights)} groups at least one of {total}")
    spare = total - len(weights)
    share = weights / weights.sum() * spare
    counts = np.floor(share).astype(np.int64)
    remainder_order = np.argsort(-(share - counts), kind="stable")
    counts[remainder_order[: spare - counts.sum()]] += 1
    return counts + 1


def hex_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct 16-hex-digit ids (random, so they look like the release's hashes)."""
    values = np.unique(rng.integers(0, 2**63, size=n, dtype=np.int64))
    while values.size < n:  # a collision among 2**63 values: draw the missing ones
        values = np.unique(np.concatenate([values, rng.integers(0, 2**63, size=n - values.size, dtype=np.int64)]))
    rng.shuffle(values)
    return np.char.mod("%016x", values).astype(object)


def group_positions(group_sizes: np.ndarray) -> np.ndarray:
    """0, 1, ..., size-1 for every group, concatenated."""
    starts = np.repeat(np.cumsum(group_sizes) - group_sizes, group_sizes)
    return np.arange(group_sizes.sum()) - starts


def draw_within_groups(
    rng: np.random.Generator, group_of_member: np.ndarray, member_weight: np.ndarray, wanted_group: np.ndarray
) -> np.ndarray:
    """For each entry of ``wanted_group``, one member of that group, drawn by weight."""
    order = np.argsort(group_of_member, kind="stable")
    cumulative = np.cumsum(member_weight[order])
    n_groups = int(max(group_of_member.max(), wanted_group.max())) + 1
    group_end = np.searchsorted(group_of_member[order], np.arange(n_groups), side="right")
    group_start = np.searchsorted(group_of_member[order], np.arange(n_groups), side="left")
    low = np.where(group_start > 0, cumulative[np.maximum(group_start - 1, 0)], 0.0)[wanted_group]
    high = cumulative[np.maximum(group_end - 1, 0)][wanted_group]
    empty = group_end[wanted_group] == group_start[wanted_group]
    target = low + rng.random(wanted_group.size) * (high - low)
    picked = order[np.minimum(np.searchsorted(cumulative, target, side="right"), order.size - 1)]
    return np.where(empty, -1, picked)


def to_ms(day_string: str) -> np.int64:
    return np.datetime64(day_string, "ms").astype(np.int64)


# --------------------------------------------------------------------------- catalogue


@dataclass
class Catalogue:
    artist: np.ndarray
    style: np.ndarray
    original: np.ndarray
    upload_ms: np.ndarray
    appeal: np.ndarray
    artist_style: np.ndarray
    style_weights: np.ndarray


def make_catalogue(params: GeneratorParameters, rng: np.random.Generator) -> Catalogue:
    # A share of artists sell a single work; the others have 1 + a log-normal number (at least 1) more.
    single = stratified_uniform(rng, params.n_artists) < params.single_item_artist_share
    sizes_raw = np.ones(params.n_artists)
    sizes_raw[~single] = 1.0 + np.maximum(
        1.0, stratified_lognormal(rng, params.artist_size_median, params.artist_size_sigma, int((~single).sum()))
    )
    if params.n_items >= params.n_artists:
        # Rescale the works beyond the first so the total is exact; single-item artists stay single.
        sizes = apportion(sizes_raw - 1.0, params.n_items)
    else:
        sizes = np.ones(params.n_items, dtype=np.int64)
    n_artists = sizes.size
    artist = np.repeat(np.arange(n_artists), sizes)

    style_weights = rng.dirichlet(np.full(params.n_styles, params.style_concentration))
    artist_style = rng.choice(params.n_styles, size=n_artists, p=style_weights)

    a = params.one_of_a_kind_share * params.one_of_a_kind_concentration
    b = (1 - params.one_of_a_kind_share) * params.one_of_a_kind_concentration
    artist_original_share = rng.beta(a, b, size=n_artists)
    # Exactly the target share of one-of-a-kind works, assigned preferably to the artists
    # inclined to them: items with the smallest uniform/propensity ratio get the flag.
    ratio = rng.random(artist.size) / np.maximum(artist_original_share[artist], 1e-12)
    original = np.zeros(artist.size, dtype=bool)
    original[np.argsort(ratio, kind="stable")[: round(params.one_of_a_kind_share * artist.size)]] = True

    # Upload batches: an artist's consecutive items share a batch time.
    batch_of_item = group_positions(sizes) // params.upload_batch_size
    batch_key = artist.astype(np.int64) * (sizes.max() + 1) + batch_of_item
    _, batch_index = np.unique(batch_key, return_inverse=True)
    n_batches = batch_index.max() + 1
    start, sales_start, end = to_ms(params.upload_start), to_ms(params.sales_start), to_ms(params.upload_end)
    early = rng.random(n_batches) < params.early_upload_share
    early_span_days = (sales_start - start) / MS_PER_DAY
    decay = params.early_upload_decay_days
    # Inverse CDF of an exponential truncated to the early span: denser near the sales start.
    days_back = -decay * np.log1p(-rng.random(n_batches) * (1 - np.exp(-early_span_days / decay)))
    batch_ms = np.where(
        early,
        sales_start - days_back * MS_PER_DAY,
        sales_start + rng.random(n_batches) * (end - sales_start),
    ).astype(np.int64)
    jitter = rng.integers(0, 2 * 3_600_000, size=artist.size)
    upload_ms = np.clip(batch_ms[batch_index] + jitter, start, end)

    appeal = np.where(
        original,
        rng.normal(0, params.appeal_sigma_original, artist.size),
        rng.normal(0, params.appeal_sigma_reprint, artist.size),
    )
    return Catalogue(artist, artist_style[artist], original, upload_ms, appeal, artist_style, style_weights)


# --------------------------------------------------------------------------- users and baskets


@dataclass
class Baskets:
    user: np.ndarray
    time_ms: np.ndarray
    size: np.ndarray
    focus: np.ndarray
    tastes: np.ndarray  # per user
    favourites: np.ndarray  # per user, -1 where none


def make_baskets(params: GeneratorParameters, catalogue: Catalogue, rng: np.random.Generator) -> Baskets:
    n_users = params.n_users
    baskets_per_user = np.ones(n_users, dtype=np.int64)
    returning = stratified_uniform(rng, n_users) >= params.single_basket_share
    baskets_per_user[returning] = 1 + truncated_power_law(
        rng,
        params.baskets_per_user_exponent,
        max(params.max_baskets_per_user - 1, 1),
        int(returning.sum()),
        params.baskets_per_user_shift,
    )
    heaviest = np.argsort(-baskets_per_user, kind="stable")[: params.outlier_buyers]
    baskets_per_user[heaviest] = np.maximum(baskets_per_user[heaviest], params.outlier_buyer_baskets)
    n_baskets = int(baskets_per_user.sum())
    user = np.repeat(np.arange(n_users), baskets_per_user)
    size = truncated_power_law(rng, params.basket_size_exponent, params.max_basket_size, n_baskets)

    # Tastes: a primary style, secondary ones that often repeat it (focused collectors).
    n_tastes = params.tastes_per_user
    tastes = rng.choice(params.n_styles, size=(n_users, n_tastes), p=catalogue.style_weights)
    repeat = rng.random((n_users, n_tastes)) < params.taste_repeat
    repeat[:, 0] = False
    tastes = np.where(repeat, tastes[:, :1], tastes)
    focus_p = np.asarray(params.focus_weights[:n_tastes], dtype=float)
    focus = tastes[user, rng.choice(n_tastes, size=n_baskets, p=focus_p / focus_p.sum())]

    # Favourite artists: drawn among the artists of the user's tastes, prolific ones more often.
    artist_sizes = np.bincount(catalogue.artist, minlength=catalogue.artist_style.size).astype(float)
    wanted_style = tastes[
        np.repeat(np.arange(n_users), params.favourite_artists),
        rng.integers(0, n_tastes, n_users * params.favourite_artists),
    ]
    favourites = draw_within_groups(rng, catalogue.artist_style, np.sqrt(artist_sizes), wanted_style).reshape(
        n_users, -1
    )

    # Times: log-normal gaps; a user whose gaps overrun the sales window is compressed into it.
    window_days = (to_ms(params.sales_end) - to_ms(params.sales_start)) / MS_PER_DAY
    gaps = rng.lognormal(np.log(params.basket_gap_median_days), params.basket_gap_sigma, n_baskets)
    first_of_user = np.r_[0, np.cumsum(baskets_per_user)[:-1]]
    gaps[first_of_user] = 0.0
    span = np.add.reduceat(gaps, first_of_user)
    limit = window_days * rng.uniform(0.5, 0.98, n_users)
    squeeze = np.where(span > limit, limit / np.maximum(span, 1e-9), 1.0)
    gaps *= squeeze[user]
    offsets = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[first_of_user], baskets_per_user)
    span = offsets[np.cumsum(baskets_per_user) - 1]
    start_day = rng.random(n_users) * np.maximum(window_days - span - 1.0, 0.0)
    day = start_day[user] + offsets
    time_ms = to_ms(params.sales_start) + np.floor(day * MS_PER_DAY).astype(np.int64)
    # Distinct baskets of one user never share a timestamp (that would merge them).
    time_ms = time_ms + group_positions(baskets_per_user)
    return Baskets(user, time_ms, size, focus, tastes, favourites)


# --------------------------------------------------------------------------- purchases
#
# The choice model gives a slot (one item of one basket) at time t the weight
#
#     w(i) = b(i, t) * (exp(s(style_i, kind_i)) * exp(alpha(artist_i)) + r(artist_i, kind_i))
#
# over the available items: b = exp(appeal) * (1 + age / recency_days) ** -recency_weight is
# the item's own attraction, s the slot's style and kind preferences, alpha >= 0 the bonuses of
# the favourite artists and of the basket's first artist, and r the revisits: a share of the
# slot's weight (growing with the user's number of earlier baskets) split equally among the
# artists the user bought from in earlier baskets. Scoring every item for every slot costs
# items x slots, which grows with the square of the scale. Instead w is drawn as a mixture:
# the base part b * exp(s) (pick a (style, kind) group by its mass, then an item in the group
# by b) plus one part per (artist, kind) with a bonus, b * exp(s) * (exp(alpha) - 1) or b * r
# (pick the part by its mass, then an item by b). Group and artist masses come from one
# cumulative sum of b per week, evaluated at the week's start (an upper bound, since b falls
# with age; the revisit split uses these masses too); a drawn item is then accepted with
# probability b(i, t) / b(i, week start) and only if it is available to the slot (uploaded,
# not sold, not already in the basket). Rejection keeps the draw exact: an accepted item
# follows w over the available items (tests/test_synthetic.py checks it against w). Slots
# that keep drawing unavailable items fall back to weighing every item.


@dataclass
class ItemIndex:
    """Items sorted by (style, kind, artist, upload time): every (style, kind) group and every
    (artist, kind) subgroup is a contiguous range of the sorted order, a subgroup in upload order."""

    order: np.ndarray  # item at each sorted position
    position: np.ndarray  # sorted position of each item
    group_bounds: np.ndarray  # (n_styles * 2 + 1,) offsets of group style * 2 + kind
    sub_start: np.ndarray  # (n_artists * 2,) first sorted position of artist * 2 + kind
    sub_end: np.ndarray  # (n_artists * 2,) one past the last (equal to start when empty)
    sub_rank: np.ndarray  # (n_artists * 2,) order of the subgroups along the sorted items
    time_key: np.ndarray  # ascending sub_rank * time_span + upload offset along the sorted items
    time_origin: int
    time_span: int

    @classmethod
    def build(cls, catalogue: Catalogue, n_styles: int, last_time: int) -> ItemIndex:
        kind = catalogue.original.astype(np.int64)
        order = np.lexsort((catalogue.upload_ms, catalogue.artist, kind, catalogue.style))
        position = np.empty_like(order)
        position[order] = np.arange(order.size)
        group = (catalogue.style * 2 + kind)[order]
        group_bounds = np.searchsorted(group, np.arange(n_styles * 2 + 1))
        sub = (catalogue.artist.astype(np.int64) * 2 + kind)[order]
        n_subs = catalogue.artist_style.size * 2
        first = np.flatnonzero(np.r_[True, sub[1:] != sub[:-1]])
        sub_start = np.zeros(n_subs, dtype=np.int64)
        sub_end = np.zeros(n_subs, dtype=np.int64)
        sub_rank = np.zeros(n_subs, dtype=np.int64)
        sub_start[sub[first]] = first
        sub_end[sub[first]] = np.r_[first[1:], sub.size]
        sub_rank[sub[first]] = np.arange(first.size)
        origin = int(catalogue.upload_ms.min())
        span = max(int(catalogue.upload_ms.max()), last_time) - origin + 1
        time_key = sub_rank[sub] * span + (catalogue.upload_ms[order] - origin)
        return cls(order, position, group_bounds, sub_start, sub_end, sub_rank, time_key, origin, span)

    def uploaded_by(self, sub: np.ndarray, time_ms: np.ndarray) -> np.ndarray:
        """One past the last sorted position of each subgroup's items uploaded at or before ``time_ms``."""
        offset = np.clip(time_ms - self.time_origin, -1, self.time_span - 1)
        cut = np.searchsorted(self.time_key, self.sub_rank[sub] * self.time_span + offset, side="right")
        return np.clip(cut, self.sub_start[sub], self.sub_end[sub])


@dataclass
class Slots:
    """Purchase slots in time order (a basket's slots are consecutive, in round order)."""

    basket: np.ndarray
    round: np.ndarray
    time: np.ndarray
    user: np.ndarray
    wants_original: np.ndarray
    first: np.ndarray  # the slot of the basket's first item
    # The slots of a user's earlier baskets are user_slots[user_start[u] : user_start[u] + n_earlier[s]].
    user_slots: np.ndarray
    user_start: np.ndarray
    n_earlier: np.ndarray
    n_earlier_baskets: np.ndarray  # the user's baskets before the slot's basket

    @classmethod
    def build(cls, baskets: Baskets, n_users: int, demand: float, rng: np.random.Generator) -> Slots:
        order = np.argsort(baskets.time_ms, kind="stable")
        basket = np.repeat(order, baskets.size[order])
        position = group_positions(baskets.size[order])
        first = np.arange(basket.size) - position
        user = baskets.user[basket]
        wants_original = rng.random(basket.size) < demand
        user_slots = np.argsort(user, kind="stable")  # per user, in time order
        user_start = np.searchsorted(user[user_slots], np.arange(n_users))
        rank_in_user = np.empty(basket.size, dtype=np.int64)
        rank_in_user[user_slots] = np.arange(basket.size) - user_start[user[user_slots]]
        n_earlier = rank_in_user[first]
        # Baskets are stored user by user in time order (make_baskets), so this is each basket's rank.
        basket_rank = group_positions(np.bincount(baskets.user, minlength=n_users))
        return cls(
            basket,
            position,
            baskets.time_ms[basket],
            user,
            wants_original,
            first,
            user_slots,
            user_start,
            n_earlier,
            basket_rank[basket],
        )


#: Draw attempts per slot before it falls back to weighing every item.
MAX_ATTEMPTS = 40


@dataclass
class WeekBound:
    """b at the week's start over the sorted items (0 for items not on offer that week), and the
    items sold since: masses leave those out, so nothing sold is ever worth drawing."""

    start_ms: int
    cumulative: np.ndarray  # (n_items + 1,) prefix sums of b at the week's start
    sold_positions: np.ndarray  # ascending sorted positions of the items sold since the week's start
    sold_cumulative: np.ndarray  # (len(sold_positions) + 1,) prefix sums of their b

    def mass(self, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Sum of b over the sorted positions [low, high), sold items left out."""
        sold = self.sold_cumulative[np.searchsorted(self.sold_positions, high)]
        sold -= self.sold_cumulative[np.searchsorted(self.sold_positions, low)]
        return np.maximum(self.cumulative[high] - self.cumulative[low] - sold, 0.0)

    def is_sold(self, position: np.ndarray) -> np.ndarray:
        if self.sold_positions.size == 0:
            return np.zeros(position.shape, dtype=bool)
        where = np.minimum(np.searchsorted(self.sold_positions, position), self.sold_positions.size - 1)
        return self.sold_positions[where] == position

    def after_sales(self, positions: np.ndarray) -> WeekBound:
        """The same week with more items sold."""
        sold = np.union1d(self.sold_positions, positions)
        bound = self.cumulative[sold + 1] - self.cumulative[sold]
        return WeekBound(self.start_ms, self.cumulative, sold, np.r_[0.0, np.cumsum(bound)])


@dataclass
class RoundMixture:
    """The mixture of one round's slots: base masses per (style, kind) group, and entries
    (row, artist-kind subgroup, coefficient) that add ``coefficient * b`` to the subgroup's items.
    The masses leave out items sold this week and items already in the slot's basket."""

    base_cumulative: np.ndarray  # (rows, n_styles * 2) cumulative over groups
    entry_row: np.ndarray  # sorted
    entry_sub: np.ndarray
    entry_end: np.ndarray  # one past the subgroup's last item uploaded by the slot's time
    entry_coefficient: np.ndarray
    entry_cumulative: np.ndarray  # (n_entries + 1,)
    entry_ptr: np.ndarray  # (rows + 1,)


class PurchaseSimulation:
    """The replay: which item each slot gets, and which one-of-a-kind items are sold."""

    def __init__(self, params: GeneratorParameters, catalogue: Catalogue, baskets: Baskets, rng: np.random.Generator):
        self.params = params
        self.catalogue = catalogue
        self.baskets = baskets
        self.rng = rng
        self.slots = Slots.build(baskets, params.n_users, params.one_of_a_kind_demand, rng)
        self.index = ItemIndex.build(catalogue, params.n_styles, int(self.slots.time.max(initial=0)))
        self.n_artists = catalogue.artist_style.size
        self.chosen = np.full(self.slots.basket.size, -1, dtype=np.int64)
        self.sold = np.zeros(catalogue.artist.size, dtype=bool)
        self.attraction = np.exp(catalogue.appeal)
        self.fallback_slots = 0

    # ----------------------------------------------------------------- the model's pieces

    def recency(self, age_ms: np.ndarray) -> np.ndarray:
        """The age factor of b: (1 + age / recency_days) ** -recency_weight (age clipped at 0)."""
        days = np.maximum(age_ms, 0) / MS_PER_DAY
        return (1.0 + days / self.params.recency_days) ** -self.params.recency_weight

    def slot_preferences(self, rows: np.ndarray) -> np.ndarray:
        """(rows, n_styles, 2) log-bonus of style and kind: focus style, user tastes, wrong kind."""
        params, baskets = self.params, self.baskets
        bonus = np.zeros((rows.size, params.n_styles, 2))
        slot_index = np.arange(rows.size)
        for taste in baskets.tastes[self.slots.user[rows]].T:
            bonus[slot_index, taste, :] = params.weight_user_style
        bonus[slot_index, baskets.focus[self.slots.basket[rows]], :] += params.weight_focus_style
        wanted = self.slots.wants_original[rows].astype(np.int64)
        bonus[slot_index, :, 1 - wanted] -= params.kind_penalty
        return bonus

    def revisit_share(self, earlier_baskets: np.ndarray) -> np.ndarray:
        """Share of a slot's weight that revisits known artists after ``earlier_baskets`` baskets:
        revisit_share_second at the second basket, rising towards revisit_share_limit along
        x**e / (x**e + h**e) of the x further baskets (h = revisit_half_baskets, e = revisit_rise_exponent).
        A first basket has no known artists."""
        params = self.params
        rise = np.maximum(earlier_baskets - 1, 0).astype(float) ** params.revisit_rise_exponent
        rise /= rise + params.revisit_half_baskets**params.revisit_rise_exponent
        share = params.revisit_share_second + (params.revisit_share_limit - params.revisit_share_second) * rise
        return np.where(earlier_baskets > 0, share, 0.0)

    def favoured_artists(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, artist, alpha): the summed log-bonus of the favourite artists and of the
        basket's first artist, one entry per (row, artist), sorted by row."""
        params, slots = self.params, self.slots
        favourites = self.baskets.favourites[slots.user[rows]]
        first_item = self.chosen[slots.first[rows]]
        basket_artist = np.where(
            (slots.round[rows] > 0) & (first_item >= 0), self.catalogue.artist[np.maximum(first_item, 0)], -1
        )
        artist = np.column_stack([favourites, basket_artist])
        alpha = np.r_[np.full(favourites.shape[1], params.weight_favourite_artist), params.weight_basket_artist]
        row = np.repeat(np.arange(rows.size), artist.shape[1])
        artist, alpha = artist.ravel(), np.tile(alpha, rows.size)
        keep = artist >= 0
        key, inverse = np.unique(row[keep] * self.n_artists + artist[keep], return_inverse=True)
        return key // self.n_artists, key % self.n_artists, np.bincount(inverse, alpha[keep], key.size)

    def known_artists(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, artist) of the artists each slot's user bought from in earlier baskets, sorted by row."""
        slots = self.slots
        counts = slots.n_earlier[rows]
        earlier = slots.user_slots[np.repeat(slots.user_start[slots.user[rows]], counts) + group_positions(counts)]
        row = np.repeat(np.arange(rows.size), counts)
        item = self.chosen[earlier]
        bought = item >= 0
        key = np.unique(row[bought] * self.n_artists + self.catalogue.artist[item[bought]])
        return key // self.n_artists, key % self.n_artists

    def basket_mates(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, item) of the items already chosen in each slot's basket."""
        slots = self.slots
        counts = slots.round[rows]
        row = np.repeat(np.arange(rows.size), counts)
        item = self.chosen[np.repeat(slots.first[rows], counts) + group_positions(counts)]
        return row[item >= 0], item[item >= 0]

    def in_basket(self, rows: np.ndarray, item: np.ndarray) -> np.ndarray:
        slots = self.slots
        found = np.zeros(rows.size, dtype=bool)
        for earlier in range(int(slots.round[rows].max(initial=0))):
            found |= (earlier < slots.round[rows]) & (self.chosen[slots.first[rows] + earlier] == item)
        return found

    def mixture(self, rows: np.ndarray, week: WeekBound) -> RoundMixture:
        """The round's mixture from the week's bound b (see the section comment)."""
        params, index, artist_style, slot_time = self.params, self.index, self.catalogue.artist_style, self.slots.time
        group_mass = week.mass(index.group_bounds[:-1], index.group_bounds[1:]).reshape(params.n_styles, 2)
        preferences = np.exp(self.slot_preferences(rows))
        base = (preferences * group_mass[None]).reshape(rows.size, -1)
        kinds = np.array([0, 1])

        def sub_mass(sub, row):
            """Mass of a subgroup's items uploaded by the slot's time (later uploads never fit)."""
            return week.mass(index.sub_start[sub], index.uploaded_by(sub, slot_time[rows[row]]))

        # Favoured artists: (exp(alpha) - 1) * exp(s) per item, one entry per (row, artist, kind).
        row, artist, alpha = self.favoured_artists(rows)
        fav_row, fav_sub = np.repeat(row, 2), (np.repeat(artist, 2) * 2 + np.tile(kinds, row.size))
        fav_coefficient = np.repeat(np.expm1(alpha), 2) * preferences[fav_row, artist_style[fav_sub // 2], fav_sub % 2]
        fav_mass = fav_coefficient * sub_mass(fav_sub, fav_row)
        parts = [(fav_row, fav_sub, fav_coefficient)]

        # Revisits: a share of the slot's weight, split equally among the known artists with works
        # of the kind asked for on offer; inside an artist, items by b (the other kind loses kind_penalty).
        row, artist = self.known_artists(rows)
        rev_row, rev_sub = np.repeat(row, 2), np.repeat(artist, 2) * 2 + np.tile(kinds, row.size)
        wanted = self.slots.wants_original[rows].astype(np.int64)
        kind_factor = np.where(rev_sub % 2 == wanted[rev_row], 1.0, np.exp(-params.kind_penalty))
        wanted_mass = sub_mass(artist * 2 + wanted[row], row)
        on_offer = wanted_mass > 0
        n_known = np.bincount(row[on_offer], minlength=rows.size)
        share = self.revisit_share(self.slots.n_earlier_baskets[rows])
        other_mass = base.sum(axis=1) + np.bincount(fav_row, fav_mass, rows.size)
        per_artist = share / (1.0 - share) * other_mass / np.maximum(n_known, 1)
        rev_coefficient = np.where(on_offer, per_artist[row] / np.where(on_offer, wanted_mass, 1.0), 0.0)
        parts.append((rev_row, rev_sub, np.repeat(rev_coefficient, 2) * kind_factor))

        entry_row = np.concatenate([p[0] for p in parts])
        order = np.argsort(entry_row, kind="stable")
        entry_row = entry_row[order]
        entry_sub = np.concatenate([p[1] for p in parts])[order]
        entry_coefficient = np.concatenate([p[2] for p in parts])[order]
        entry_end = index.uploaded_by(entry_sub, slot_time[rows[entry_row]])
        entry_mass = entry_coefficient * week.mass(index.sub_start[entry_sub], entry_end)
        self.leave_out_basket_mates(rows, week, preferences, base, entry_row, entry_sub, entry_coefficient, entry_mass)
        return RoundMixture(
            base_cumulative=np.cumsum(base, axis=1),
            entry_row=entry_row,
            entry_sub=entry_sub,
            entry_end=entry_end,
            entry_coefficient=entry_coefficient,
            entry_cumulative=np.r_[0.0, np.cumsum(entry_mass)],
            entry_ptr=np.searchsorted(entry_row, np.arange(rows.size + 1)),
        )

    def leave_out_basket_mates(
        self, rows, week, preferences, base, entry_row, entry_sub, entry_coefficient, entry_mass
    ) -> None:
        """Remove the mass of the prints already in each slot's basket from its groups and entries
        (in place; one-of-a-kind mates are sold, so already left out)."""
        row, item = self.basket_mates(rows)
        keep = ~self.catalogue.original[item]
        row, item = row[keep], item[keep]
        if row.size == 0:
            return
        catalogue, n_subs = self.catalogue, self.n_artists * 2
        style = catalogue.style[item]
        position = self.index.position[item]
        bound = week.cumulative[position + 1] - week.cumulative[position]
        before = base.copy()
        np.subtract.at(base, (row, style * 2), bound * preferences[row, style, 0])
        # Rounding may leave a little mass in a group of basket mates only: it must not be drawn.
        base[base < before * 1e-9] = 0.0
        keys, inverse = np.unique(row * n_subs + catalogue.artist[item].astype(np.int64) * 2, return_inverse=True)
        mate_bound = np.bincount(inverse, bound, keys.size)
        entry_key = entry_row * n_subs + entry_sub
        where = np.minimum(np.searchsorted(keys, entry_key), keys.size - 1)
        hit = keys[where] == entry_key
        before = entry_mass.copy()
        entry_mass[hit] -= mate_bound[where[hit]] * entry_coefficient[hit]
        entry_mass[entry_mass < before * 1e-9] = 0.0

    # ----------------------------------------------------------------- the replay

    def run(self) -> np.ndarray:
        slots, params = self.slots, self.params
        week = (slots.time - to_ms(params.sales_start)) // (7 * MS_PER_DAY)
        bounds = np.flatnonzero(np.r_[True, week[1:] != week[:-1], True])
        for start, stop in zip(bounds[:-1], bounds[1:]):
            bound = self.week_bound(self.week_start(int(start)), int(slots.time[stop - 1]))
            for round_ in range(int(slots.round[start:stop].max()) + 1):
                rows = start + np.flatnonzero(slots.round[start:stop] == round_)
                self.draw_round(rows, bound)
                picked = self.chosen[rows]
                sold_now = picked[(picked >= 0) & self.catalogue.original[np.maximum(picked, 0)]]
                if sold_now.size:
                    bound = bound.after_sales(self.index.position[sold_now])
        if self.fallback_slots:
            log.info("%d purchase slots were drawn by weighing every item", self.fallback_slots)
        return self.chosen

    def week_start(self, slot: int) -> int:
        """The start (ms) of the week of a slot: the simulation draws a week's slots together."""
        sales_start = int(to_ms(self.params.sales_start))
        week_ms = 7 * MS_PER_DAY
        return sales_start + (int(self.slots.time[slot]) - sales_start) // week_ms * week_ms

    def week_bound(self, week_start: int, week_end: int) -> WeekBound:
        """b at the week's start of the items on offer that week (uploaded by its end, not sold)."""
        catalogue, item = self.catalogue, self.index.order
        on_offer = (catalogue.upload_ms[item] <= week_end) & ~self.sold[item]
        bound = np.where(on_offer, self.attraction[item] * self.recency(week_start - catalogue.upload_ms[item]), 0.0)
        return WeekBound(week_start, np.r_[0.0, np.cumsum(bound)], np.zeros(0, dtype=np.int64), np.zeros(1))

    def propose(self, mixture: RoundMixture, rows: np.ndarray, pending: np.ndarray, week: WeekBound) -> np.ndarray:
        """A sorted item position per pending row (of ``rows``), drawn from the mixture. An item the
        masses leave out (sold this week before the round, or in the basket) is drawn again inside
        the same range, which keeps the draw exact."""
        rng, index, cumulative = self.rng, self.index, week.cumulative
        base_total = mixture.base_cumulative[pending, -1]
        entry_first, entry_stop = mixture.entry_ptr[pending], mixture.entry_ptr[pending + 1]
        extra_total = mixture.entry_cumulative[entry_stop] - mixture.entry_cumulative[entry_first]
        u = rng.random(pending.size) * (base_total + extra_total)
        from_base = u < base_total
        low = np.empty(pending.size, dtype=np.int64)
        high = np.empty(pending.size, dtype=np.int64)
        # Base part: a (style, kind) group by its preferred mass.
        group = (mixture.base_cumulative[pending[from_base]] <= u[from_base, None]).sum(axis=1)
        group = np.minimum(group, mixture.base_cumulative.shape[1] - 1)
        low[from_base], high[from_base] = index.group_bounds[group], index.group_bounds[group + 1]
        # Entries: an (artist, kind) subgroup by its extra mass.
        extra = ~from_base
        if extra.any():
            first, last = entry_first[extra], entry_stop[extra] - 1
            target = mixture.entry_cumulative[first] + (u[extra] - base_total[extra])
            entry = np.clip(np.searchsorted(mixture.entry_cumulative, target, side="right") - 1, first, last)
            low[extra], high[extra] = index.sub_start[mixture.entry_sub[entry]], mixture.entry_end[entry]
        # An item inside the range, by b.
        position = np.empty(pending.size, dtype=np.int64)
        todo = np.arange(pending.size)
        for _ in range(MAX_ATTEMPTS):
            lo, hi = low[todo], high[todo]
            target = cumulative[lo] + rng.random(todo.size) * (cumulative[hi] - cumulative[lo])
            position[todo] = np.clip(np.searchsorted(cumulative, target, side="right") - 1, lo, np.maximum(hi - 1, lo))
            left_out = week.is_sold(position[todo]) | self.in_basket(rows[pending[todo]], index.order[position[todo]])
            todo = todo[left_out]
            if todo.size == 0:
                break
        return position

    def draw_round(self, rows: np.ndarray, week: WeekBound) -> None:
        mixture = self.mixture(rows, week)
        pending = np.arange(rows.size)
        for _ in range(MAX_ATTEMPTS):
            if pending.size == 0:
                return
            position = self.propose(mixture, rows, pending, week)
            pending = pending[~self.accept(rows[pending], position, week)]
        self.fallback_slots += pending.size
        for row in pending:
            self.draw_by_weighing(rows, int(row), mixture)

    def acceptable(self, rows: np.ndarray, position: np.ndarray, week: WeekBound) -> np.ndarray:
        """Which proposals are available to their slot and pass the age correction b(i, t) / bound."""
        catalogue, slots = self.catalogue, self.slots
        item = self.index.order[position]
        upload = catalogue.upload_ms[item]
        cumulative = week.cumulative
        ok = (cumulative[position + 1] > cumulative[position]) & (upload <= slots.time[rows]) & ~self.sold[item]
        ratio = self.recency(slots.time[rows] - upload) / self.recency(week.start_ms - upload)
        ok &= self.rng.random(rows.size) < ratio
        return ok & ~self.in_basket(rows, item)

    def accept(self, rows: np.ndarray, position: np.ndarray, week: WeekBound) -> np.ndarray:
        """Record the acceptable proposals; of two slots with the same one-of-a-kind item the earlier keeps it."""
        catalogue, slots = self.catalogue, self.slots
        item = self.index.order[position]
        ok = self.acceptable(rows, position, week)
        contested = ok & catalogue.original[item]
        order = np.lexsort((rows, slots.time[rows], item))
        order = order[contested[order]]
        loser = order[1:][item[order[1:]] == item[order[:-1]]]
        ok[loser] = False
        self.chosen[rows[ok]] = item[ok]
        self.sold[item[ok & catalogue.original[item]]] = True
        return ok

    def item_weights(self, rows: np.ndarray, row: int, mixture: RoundMixture) -> np.ndarray:
        """w of every item for one slot at its own time (0 where unavailable): the distribution
        that the mixture draw samples."""
        catalogue, slots = self.catalogue, self.slots
        slot = rows[row]
        kind = catalogue.original.astype(np.int64)
        factor = np.exp(self.slot_preferences(np.array([slot]))[0])[catalogue.style, kind]
        entries = slice(mixture.entry_ptr[row], mixture.entry_ptr[row + 1])
        extra = np.zeros(self.n_artists * 2)
        np.add.at(extra, mixture.entry_sub[entries], mixture.entry_coefficient[entries])
        factor += extra[catalogue.artist.astype(np.int64) * 2 + kind]
        available = (catalogue.upload_ms <= slots.time[slot]) & ~self.sold
        mates = self.chosen[slots.first[slot] : slot]
        available[mates[mates >= 0]] = False
        return np.where(available, self.attraction * self.recency(slots.time[slot] - catalogue.upload_ms) * factor, 0.0)

    def draw_by_weighing(self, rows: np.ndarray, row: int, mixture: RoundMixture) -> None:
        """Exact draw for one slot by weighing every item (the rare fallback)."""
        weights = self.item_weights(rows, row, mixture)
        total = weights.sum()
        if total <= 0:
            return
        item = int(np.searchsorted(np.cumsum(weights), self.rng.random() * total, side="right"))
        item = min(item, weights.size - 1)
        self.chosen[rows[row]] = item
        if self.catalogue.original[item]:
            self.sold[item] = True


def simulate_purchases(
    params: GeneratorParameters, catalogue: Catalogue, baskets: Baskets, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Item per purchase slot (-1 where nothing was available) and the basket of each slot."""
    simulation = PurchaseSimulation(params, catalogue, baskets, rng)
    return simulation.run(), simulation.slots.basket


# --------------------------------------------------------------------------- the whole data set


def generate(params: GeneratorParameters, seed: int) -> SyntheticDataset:
    """Generate a data set; the same parameters and seed give identical output."""
    began = time.perf_counter()
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence([seed, 0xC0A7]).spawn(5)]
    catalogue_rng, basket_rng, purchase_rng, embedding_rng, id_rng = streams

    catalogue = make_catalogue(params, catalogue_rng)
    baskets = make_baskets(params, catalogue, basket_rng)
    chosen, slot_basket = simulate_purchases(params, catalogue, baskets, purchase_rng)
    bought = chosen >= 0
    if (~bought).any():
        log.info("%d purchase slots found no item in the inventory and were dropped", int((~bought).sum()))

    # Embeddings come from their own random stream, so their size never changes the transactions.
    centres = style_centres(params.n_styles, embedding_rng, params.style_model)
    latents = item_latents(catalogue.artist, catalogue.artist_style, centres, embedding_rng, params.style_model)
    renderer = FeatureRenderer.from_rng(params.embedding_dim, embedding_rng, params.style_model)

    item_ids = hex_ids(id_rng, catalogue.artist.size)
    artist_ids = hex_ids(id_rng, catalogue.artist_style.size)
    user_ids = hex_ids(id_rng, params.n_users)
    items = pd.DataFrame(
        {
            "item_id": item_ids,
            "artist_id": artist_ids[catalogue.artist],
            "upload_time": catalogue.upload_ms.astype("datetime64[ms]"),
            "one_of_a_kind": catalogue.original,
        }
    )
    purchases = pd.DataFrame(
        {
            "user_id": user_ids[baskets.user[slot_basket[bought]]],
            "time": baskets.time_ms[slot_basket[bought]].astype("datetime64[ms]"),
            "item_id": item_ids[chosen[bought]],
        }
    ).sort_values(["time", "user_id", "item_id"], kind="stable", ignore_index=True)
    log.info(
        "generated %d items by %d artists, %d purchase rows by %d users in %.2f s",
        len(items),
        artist_ids.size,
        len(purchases),
        purchases["user_id"].nunique(),
        time.perf_counter() - began,
    )
    return SyntheticDataset(items, purchases, catalogue.style, baskets.tastes, latents, renderer)


def format_timestamps(values: pd.Series) -> pd.Series:
    """'YYYY-MM-DD HH:MM:SS.fff', the release's text form."""
    return values.dt.strftime("%Y-%m-%d %H:%M:%S.%f").str[:-3]


def public_release_frames(data: SyntheticDataset) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Inventory and purchases in the public-release layout (+ the `original` flag)."""
    inventory = pd.DataFrame(
        {
            "artwork_id_hash": data.items["item_id"],
            "artist_id_hash": data.items["artist_id"],
            "upload_timestamp": format_timestamps(data.items["upload_time"]),
            "original": np.where(data.items["one_of_a_kind"], "t", "f"),
        }
    )
    purchases = pd.DataFrame(
        {
            "user_id_hash": data.purchases["user_id"],
            "purchase_timestamp": format_timestamps(data.purchases["time"]),
            "artwork_id_hash": data.purchases["item_id"],
        }
    )
    return inventory, purchases


def write_public_release(
    data: SyntheticDataset,
    inventory_path=None,
    purchases_path=None,
    embeddings_path=None,
    folder: str | Path | None = None,
) -> None:
    """Write the three release files (each atomically); ``folder`` gives the default names."""
    if folder is not None:
        folder = Path(folder)
        inventory_path = inventory_path or folder / RAW_INVENTORY
        purchases_path = purchases_path or folder / RAW_PURCHASES
        embeddings_path = embeddings_path or folder / RAW_EMBEDDINGS
    inventory, purchases = public_release_frames(data)
    write_csv(inventory, inventory_path)
    write_csv(purchases, purchases_path)
    write_embeddings_npy(embeddings_path, data.items["item_id"].tolist(), data.embedding_chunks())
