"""A UGallery-like data set generator (deterministic from a seed).

The generative model, in the order it runs (docs/synthetic_data.md has the
parameters and a comparison with the real statistics):

1. Catalogue. Artists get a heavy-tailed (log-normal) number of items and one
   visual style each. Whether an artist makes one-of-a-kind works or
   reprints is a per-artist Beta-distributed propensity. Artists upload in
   batches; batch times follow a flat density over the sales years plus an
   exponentially thinning tail back to 2007. Items get a log-normal appeal.
2. Users. Baskets per user and items per basket follow truncated power laws.
   Each user has a few visual tastes (styles) and favourite artists drawn from
   those styles. Basket times: a random start plus log-normal gaps.
3. Purchases. Week by week, every purchase slot picks one item from the
   current inventory with a Gumbel-max draw over log-weights: appeal, a
   preference for recent uploads, the basket's focus style, the user's other
   tastes, favourite artists, and (from a basket's second item on) the artist
   of the basket's first item. One-of-a-kind items leave the inventory once
   sold; when two slots draw the same one, the earlier keeps it and the other
   draws again.
4. Embeddings: the style model of :mod:`curatornet.data.embeddings`.

Everything is vectorised over items, users and slots; the only loops run over
weeks and over the position inside a basket.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtri

from curatornet.data.embeddings import StyleModel, item_latents, render_features, style_centres, write_embeddings_npy
from curatornet.data.layout import RAW_EMBEDDINGS, RAW_INVENTORY, RAW_PURCHASES
from curatornet.io import write_csv

log = logging.getLogger(__name__)

DAY = np.timedelta64(1, "D")
MS_PER_DAY = 86_400_000
#: Stands in for -inf in log-weights (keeps arithmetic free of inf - inf).
EXCLUDED = np.float32(-1e30)


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
    max_baskets_per_user: int = 212
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
    weight_basket_artist: float = 4.6
    #: Log-weight lost per unit of log(1 + age / recency_days) since upload.
    recency_weight: float = 0.55
    recency_days: float = 60.0
    #: Log-weight lost when a slot's item is not of the kind it asked for.
    kind_penalty: float = 6.0

    # Embeddings.
    embedding_dim: int = 2048
    style_model: StyleModel = StyleModel()


PRESETS: dict[str, GeneratorParameters] = {
    "default": GeneratorParameters(),
    "tiny": GeneratorParameters(
        n_items=400,
        n_artists=40,
        n_users=160,
        n_styles=8,
        max_baskets_per_user=25,
        max_basket_size=8,
        focus_weights=(0.6, 0.25, 0.15),
    ),
}


def parameters_for(
    preset: str = "default", scale: float = 1.0, embedding_dim: int = 2048, **overrides
) -> GeneratorParameters:
    """A preset with users, items and artists multiplied by ``scale`` (styles stay fixed)."""
    base = PRESETS[preset]
    return dataclasses.replace(
        base,
        n_items=max(2, round(base.n_items * scale)),
        n_artists=max(1, round(base.n_artists * scale)),
        n_users=max(1, round(base.n_users * scale)),
        embedding_dim=embedding_dim,
        **overrides,
    )


@dataclass
class SyntheticDataset:
    """A generated data set in source form (ids are hex strings like the public release)."""

    items: pd.DataFrame  # item_id, artist_id, upload_time, one_of_a_kind
    purchases: pd.DataFrame  # user_id, time, item_id
    embeddings: np.ndarray  # (n_items, dim) float32 in the order of items
    item_style: np.ndarray  # planted style of every item (for tests and docs)
    user_tastes: np.ndarray  # (n_users, tastes_per_user) planted styles per user


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


def simulate_purchases(
    params: GeneratorParameters, catalogue: Catalogue, baskets: Baskets, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Item per purchase slot (-1 where nothing was available) and the basket of each slot."""
    order = np.argsort(baskets.time_ms, kind="stable")
    slot_basket = np.repeat(order, baskets.size[order])
    slot_round = group_positions(baskets.size[order])
    slot_time = baskets.time_ms[slot_basket]
    slot_user = baskets.user[slot_basket]
    slot_wants_original = rng.random(slot_basket.size) < params.one_of_a_kind_demand
    basket_first_slot = np.full(baskets.size.size, -1)
    basket_first_slot[order] = np.cumsum(baskets.size[order]) - baskets.size[order]
    chosen = np.full(slot_basket.size, -1, dtype=np.int64)
    sold = np.zeros(catalogue.artist.size, dtype=bool)

    week = (slot_time - to_ms(params.sales_start)) // (7 * MS_PER_DAY)
    week_bounds = np.flatnonzero(np.r_[True, week[1:] != week[:-1], True])
    upload_order = np.argsort(catalogue.upload_ms, kind="stable")
    for start, stop in zip(week_bounds[:-1], week_bounds[1:]):
        week_end = slot_time[stop - 1]
        uploaded = upload_order[: np.searchsorted(catalogue.upload_ms[upload_order], week_end, side="right")]
        for round_ in range(int(slot_round[start:stop].max()) + 1):
            rows = start + np.flatnonzero(slot_round[start:stop] == round_)
            candidates = uploaded[~sold[uploaded]]
            if candidates.size == 0:
                continue
            logits = slot_log_weights(
                params,
                catalogue,
                baskets,
                rows,
                candidates,
                slot_time,
                slot_user,
                slot_basket,
                slot_wants_original,
                chosen,
                basket_first_slot,
                slot_round,
            )
            chosen[rows] = draw_without_conflicts(rng, logits, candidates, catalogue.original, slot_time[rows])
            picked = chosen[rows]
            sold[picked[(picked >= 0) & catalogue.original[np.maximum(picked, 0)]]] = True
    basket_of_slot = slot_basket
    return chosen, basket_of_slot


def slot_log_weights(
    params,
    catalogue,
    baskets,
    rows,
    candidates,
    slot_time,
    slot_user,
    slot_basket,
    slot_wants_original,
    chosen,
    basket_first_slot,
    slot_round,
) -> np.ndarray:
    """Log-weights (slots x candidate items) of the choice model (see the module docstring)."""
    users = slot_user[rows]
    style = catalogue.style[candidates]
    artist = catalogue.artist[candidates]
    age_days = (slot_time[rows, None] - catalogue.upload_ms[None, candidates]).astype(np.float32) / np.float32(
        MS_PER_DAY
    )
    logits = np.log1p(np.maximum(age_days, 0.0) / np.float32(params.recency_days))
    logits *= np.float32(-params.recency_weight)
    logits += catalogue.appeal[candidates].astype(np.float32)[None, :]
    # Style preference as a small (slots x styles) table, gathered per candidate.
    style_bonus = np.zeros((rows.size, params.n_styles), dtype=np.float32)
    slot_index = np.arange(rows.size)
    for taste in baskets.tastes[users].T:
        style_bonus[slot_index, taste] = params.weight_user_style
    style_bonus[slot_index, baskets.focus[slot_basket[rows]]] += params.weight_focus_style
    logits += style_bonus[:, style]
    favourites = baskets.favourites[users]
    is_favourite = np.zeros(logits.shape, dtype=bool)
    for favourite in favourites.T:
        is_favourite |= artist[None, :] == favourite[:, None]
    logits += np.float32(params.weight_favourite_artist) * is_favourite
    wrong_kind = catalogue.original[candidates][None, :] != slot_wants_original[rows][:, None]
    logits -= np.float32(params.kind_penalty) * wrong_kind
    logits[age_days < 0] = EXCLUDED
    if slot_round[rows[0]] > 0:
        # Later items of a basket lean towards the artist of its first item and never repeat an item.
        first_slots = basket_first_slot[slot_basket[rows]]
        first_item = chosen[first_slots]
        basket_artist = np.where(first_item >= 0, catalogue.artist[np.maximum(first_item, 0)], -1)
        logits += params.weight_basket_artist * (artist[None, :] == basket_artist[:, None])
        position = np.full(catalogue.artist.size, -1)
        position[candidates] = np.arange(candidates.size)
        for earlier in range(int(slot_round[rows[0]])):
            item = chosen[first_slots + earlier]
            column = np.where(item >= 0, position[np.maximum(item, 0)], -1)
            hit = column >= 0
            logits[np.flatnonzero(hit), column[hit]] = EXCLUDED
    return logits


def draw_without_conflicts(
    rng, logits: np.ndarray, candidates: np.ndarray, original: np.ndarray, times: np.ndarray
) -> np.ndarray:
    """Gumbel-max draw per row; a one-of-a-kind item drawn twice goes to the earlier slot.

    The losers draw again with the same noise minus the lost item, which by the
    Gumbel-top-k property samples the choice model without that item.
    """
    uniform = rng.random(logits.shape, dtype=np.float32)
    perturbed = logits - np.log(-np.log(np.maximum(uniform, np.float32(1e-30))))
    rows = np.arange(logits.shape[0])
    while True:
        column = perturbed.argmax(axis=1)
        available = logits[rows, column] > EXCLUDED / 2
        item = np.where(available, candidates[column], -1)
        contested = available & original[np.maximum(item, 0)]
        order = np.lexsort((rows, times, item))
        order = order[contested[order]]
        loser = order[1:][item[order[1:]] == item[order[:-1]]]
        if loser.size == 0:
            return item
        perturbed[loser, column[loser]] = -np.inf
        logits[loser, column[loser]] = EXCLUDED


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
    embeddings = render_features(latents, params.embedding_dim, embedding_rng, params.style_model)

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
    return SyntheticDataset(items, purchases, embeddings, catalogue.style, baskets.tastes)


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
    write_embeddings_npy(embeddings_path, data.items["item_id"].tolist(), data.embeddings)
