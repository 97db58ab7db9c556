"""A second generative model: users and items in one latent taste space.

It exists to check that the project's conclusions do not depend on the default
generator (:mod:`curatornet.data.synthetic`), so every mechanism differs:

- Taste. Users and items are points of one ``latent_dim``-dimensional space;
  there are no styles, favourite artists or bonuses. An artist is a point, its
  works scatter around it, and a user's taste drifts a little between visits.
- Catalogue. Works per artist: 1 + a negative binomial. Each artist works in
  one main medium (20 codes); a few mediums are reproducible (prints,
  photographs) and their works are rarely one-of-a-kind. Artists join the
  store over time (more of them lately) and upload with exponential gaps.
- Visits. Each user makes a heavy-tailed number of visits (a truncated zeta
  law) spread over a log-normal active period that starts at a uniform time.
- Choice. At every visit the user browses a random sample of the live
  inventory (recent uploads are more visible) and buys the ``s`` browsed works
  of highest utility: latent affinity + the work's quality + Gumbel noise,
  ``s`` = 1 + a negative binomial. One-of-a-kind works leave the inventory.
- Embeddings. A fixed random two-layer network (tanh hidden layer, ReLU
  output) of the item's latent point, plus noise: non-negative 2048-d vectors
  whose geometry follows the latent space through a nonlinear map.

It writes UGallery's research layout (``valid_artworks.csv``,
``valid_sales.csv``) and an ``embeddings.npy`` of [item_id, vector] rows.
docs/synthetic_data.md describes it ("A second generative model").
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from curatornet.data.embeddings import RENDER_CHUNK_ROWS, write_embeddings_rows
from curatornet.data.layout import RESEARCH_ARTWORKS, RESEARCH_SALES
from curatornet.io import atomic_path

log = logging.getLogger(__name__)

MS_PER_DAY = 86_400_000
#: File name of the embeddings written beside the research-layout files.
LATENT_EMBEDDINGS = "embeddings.npy"


@dataclass(frozen=True)
class LatentParameters:
    """All knobs of the latent-factor model; the defaults are roughly UGallery-sized."""

    n_artists: int = 735
    n_users: int = 2919
    latent_dim: int = 12
    n_media: int = 20
    #: Medium codes of reproducible works (prints, photographs) and their share of artists.
    reproducible_media: tuple[int, ...] = (3, 12)
    reproducible_artist_share: float = 0.2
    original_share_reproducible: float = 0.05
    original_share_unique: float = 0.97

    # Works per artist: 1 + negative binomial (shape, mean).
    works_shape: float = 0.6
    works_extra_mean: float = 9.5
    item_spread: float = 0.45  #: a work's distance from its artist's point (per dimension)
    quality_sigma: float = 0.6

    upload_start: str = "2007-01-01"
    upload_end: str = "2018-06-01"
    sales_start: str = "2014-01-01"
    sales_end: str = "2018-06-01"
    #: Artists join at start + span * U**join_power (< 1: more artists lately).
    join_power: float = 0.55
    upload_gap_days: float = 45.0

    # Visits per user: zeta(visit_exponent) truncated at max_visits; active period log-normal.
    visit_exponent: float = 2.6
    max_visits: int = 150
    active_days_median: float = 400.0
    active_days_sigma: float = 1.2
    taste_drift: float = 0.15  #: per-visit random-walk step of a user's taste (per dimension)

    # Choice.
    browse_size: int = 120  #: works browsed per visit
    #: After browsing, the user opens the pages of the artists of the best few browsed works
    #: and, with follow_probability each, of artists bought from before; their works join the browsed ones.
    artist_pages: int = 1
    follow_probability: float = 0.3
    original_bonus: float = 1.8  #: utility of a one-of-a-kind work over a reproduction
    #: Visibility of a work of age a (days): floor + (1 - floor) * exp(-a / visibility_days).
    visibility_floor: float = 0.1
    visibility_days: float = 120.0
    affinity_weight: float = 2.2  #: weight of <taste, item> / sqrt(latent_dim) in the utility
    basket_shape: float = 0.35  #: basket size 1 + negative binomial(shape, p)
    basket_p: float = 0.52
    max_basket_size: int = 25

    # Embeddings.
    embedding_dim: int = 2048
    hidden_units: int = 96
    embedding_noise: float = 0.35


def latent_parameters(scale: float = 1.0, embedding_dim: int = 2048, **overrides) -> LatentParameters:
    """The default parameters with artists and users multiplied by ``scale``."""
    base = LatentParameters()
    changes = {
        "n_artists": max(1, round(base.n_artists * scale)),
        "n_users": max(1, round(base.n_users * scale)),
        "embedding_dim": embedding_dim,
    }
    return dataclasses.replace(base, **{**changes, **overrides})


@dataclass
class LatentDataset:
    """A generated data set in research-layout form (integer ids, as in the real files)."""

    artworks: pd.DataFrame  # id, artist_id, upload_date (datetime64[ms]), original (bool), medium_id
    sales: pd.DataFrame  # id, customer_id, artwork_id, order_date (datetime64[ms])
    latents: np.ndarray  # (n_items, latent_dim) in the order of artworks
    params: LatentParameters
    embedding_seed: np.random.SeedSequence

    def embedding_chunks(self) -> Iterator[np.ndarray]:
        yield from render_embeddings(self.latents, self.params, np.random.default_rng(self.embedding_seed))


def to_ms(day: str) -> int:
    return int(np.datetime64(day, "ms").astype(np.int64))


def unique_ids(rng: np.random.Generator, n: int, low: int) -> np.ndarray:
    """``n`` distinct integers from [low, low + 5n), in random order (they look like database keys)."""
    return low + rng.choice(5 * max(n, 1), size=n, replace=False)


# --------------------------------------------------------------------------- catalogue


def make_catalogue(params: LatentParameters, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n_artists = params.n_artists
    p = params.works_shape / (params.works_shape + params.works_extra_mean)
    works = 1 + rng.negative_binomial(params.works_shape, p, size=n_artists)
    artist = np.repeat(np.arange(n_artists), works)
    n_items = artist.size

    artist_point = rng.normal(0.0, 1.0, size=(n_artists, params.latent_dim))
    item_point = artist_point[artist] + rng.normal(0.0, params.item_spread, size=(n_items, params.latent_dim))
    quality = rng.normal(0.0, params.quality_sigma, size=n_items)

    # Media: a reproducible share of artists works in a reproducible medium, the others in one of the rest.
    reproducible = np.asarray(params.reproducible_media)
    unique_media = np.setdiff1d(np.arange(params.n_media), reproducible)
    media_popularity = rng.dirichlet(np.full(unique_media.size, 1.5))
    makes_prints = rng.random(n_artists) < params.reproducible_artist_share
    main_medium = np.where(
        makes_prints,
        rng.choice(reproducible, size=n_artists),
        rng.choice(unique_media, size=n_artists, p=media_popularity),
    )
    # Most works are in the artist's main medium; the rest in any medium.
    medium = np.where(rng.random(n_items) < 0.85, main_medium[artist], rng.integers(0, params.n_media, size=n_items))
    is_reproducible = np.isin(medium, reproducible)
    original = rng.random(n_items) < np.where(
        is_reproducible, params.original_share_reproducible, params.original_share_unique
    )

    # Time line: artists join over the years, then upload with exponential gaps.
    start, end = to_ms(params.upload_start), to_ms(params.upload_end)
    join = start + (end - start) * rng.random(n_artists) ** params.join_power
    gaps = rng.exponential(params.upload_gap_days * MS_PER_DAY, size=n_items)
    first_of_artist = np.r_[0, np.cumsum(works)[:-1]]
    gaps[first_of_artist] = 0.0
    offset = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[first_of_artist], works)
    upload = join[artist] + offset
    # Works that would come after the end are spread over the artist's time on the site instead.
    late = upload >= end
    upload[late] = join[artist[late]] + rng.random(late.sum()) * (end - join[artist[late]])
    return {
        "artist": artist,
        "point": item_point,
        "quality": quality,
        "medium": medium,
        "original": original,
        "upload_ms": np.floor(upload).astype(np.int64),
    }


# --------------------------------------------------------------------------- visits


def make_visits(params: LatentParameters, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(user, time_ms) of every visit, in time order."""
    support = np.arange(1, params.max_visits + 1)
    weights = support.astype(float) ** -params.visit_exponent
    visits = rng.choice(support, size=params.n_users, p=weights / weights.sum())
    start, end = to_ms(params.sales_start), to_ms(params.sales_end)
    arrival = start + rng.random(params.n_users) * (end - start)
    active = rng.lognormal(np.log(params.active_days_median), params.active_days_sigma, params.n_users) * MS_PER_DAY
    user = np.repeat(np.arange(params.n_users), visits)
    # The first visit is the arrival; the others fall uniformly in the active period (cut at the end).
    period = np.minimum(active, end - 1 - arrival)[user]
    later = rng.random(user.size) * period
    later[np.r_[0, np.cumsum(visits)[:-1]]] = 0.0
    time_ms = np.floor(arrival[user] + later).astype(np.int64)
    order = np.lexsort((time_ms, user))
    user, time_ms = user[order], time_ms[order]
    # Two visits of one user at the same instant are one visit (one basket).
    keep = np.r_[True, (user[1:] != user[:-1]) | (time_ms[1:] != time_ms[:-1])]
    user, time_ms = user[keep], time_ms[keep]
    order = np.argsort(time_ms, kind="stable")
    return user[order], time_ms[order]


# --------------------------------------------------------------------------- choices


class LiveInventory:
    """The works on offer: uploaded and not sold (one-of-a-kind works leave once sold).

    A dense array with swap-removal, so adding, removing and sampling cost O(1) per work.
    """

    def __init__(self, n_items: int):
        self.items = np.empty(n_items, dtype=np.int64)
        self.where = np.full(n_items, -1, dtype=np.int64)
        self.size = 0

    def add(self, new: np.ndarray) -> None:
        self.items[self.size : self.size + new.size] = new
        self.where[new] = np.arange(self.size, self.size + new.size)
        self.size += new.size

    def remove(self, item: int) -> None:
        slot = self.where[item]
        last = self.items[self.size - 1]
        self.items[slot] = last
        self.where[last] = slot
        self.where[item] = -1
        self.size -= 1


def simulate_sales(
    params: LatentParameters, catalogue: dict[str, np.ndarray], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, item, time_ms) of every purchased work."""
    visit_user, visit_time = make_visits(params, rng)
    artist, upload_ms, original = catalogue["artist"], catalogue["upload_ms"], catalogue["original"]
    n_items = artist.size
    # Works of artist a are the range [artist_start[a], artist_start[a + 1]) (make_catalogue repeats artists).
    artist_start = np.searchsorted(artist, np.arange(params.n_artists + 1))
    taste = rng.normal(0.0, 1.0, size=(params.n_users, params.latent_dim))
    upload_order = np.argsort(upload_ms, kind="stable")
    upload_sorted = upload_ms[upload_order]
    sizes = np.minimum(
        1 + rng.negative_binomial(params.basket_shape, params.basket_p, size=visit_user.size), params.max_basket_size
    )
    live = LiveInventory(n_items)
    sold = np.zeros(n_items, dtype=bool)
    known: dict[int, list[int]] = {}
    uploaded = 0
    scale = params.affinity_weight / np.sqrt(params.latent_dim)

    def utility(user: int, works: np.ndarray) -> np.ndarray:
        value = scale * (catalogue["point"][works] @ taste[user]) + catalogue["quality"][works]
        return value + params.original_bonus * original[works]

    def artist_works(artists, moment: int) -> np.ndarray:
        works = [np.arange(artist_start[a], artist_start[a + 1]) for a in artists]
        works = np.concatenate(works) if works else np.zeros(0, dtype=np.int64)
        return works[(upload_ms[works] <= moment) & ~sold[works]]

    out_user, out_item, out_time = [], [], []
    for user, moment, size in zip(visit_user.tolist(), visit_time.tolist(), sizes.tolist()):
        arrived = int(np.searchsorted(upload_sorted, moment, side="right"))
        if arrived > uploaded:
            live.add(upload_order[uploaded:arrived])
            uploaded = arrived
        if live.size == 0:
            continue
        taste[user] += rng.normal(0.0, params.taste_drift, size=params.latent_dim)
        browsed = live.items[rng.integers(0, live.size, size=params.browse_size)]
        age_days = (moment - upload_ms[browsed]) / MS_PER_DAY
        visible = params.visibility_floor + (1 - params.visibility_floor) * np.exp(-age_days / params.visibility_days)
        browsed = np.unique(browsed[rng.random(browsed.size) < visible])
        # Artist pages: of the best browsed works, and of followed artists (bought from before).
        best = browsed[np.argsort(-utility(user, browsed))[: params.artist_pages]]
        followed = [a for a in known.get(user, ()) if rng.random() < params.follow_probability]
        pages = np.unique(np.r_[artist[best], np.asarray(followed, dtype=np.int64)])
        browsed = np.union1d(browsed, artist_works(pages, moment))
        if browsed.size == 0:
            continue
        noisy = utility(user, browsed) + rng.gumbel(size=browsed.size)
        bought = browsed[np.argsort(-noisy)[:size]]
        out_user.append(np.full(bought.size, user))
        out_item.append(bought)
        out_time.append(np.full(bought.size, moment))
        known.setdefault(user, [])
        known[user] = sorted(set(known[user]) | set(artist[bought].tolist()))
        for item in bought[original[bought]].tolist():
            live.remove(item)
            sold[item] = True
    return np.concatenate(out_user), np.concatenate(out_item), np.concatenate(out_time)


# --------------------------------------------------------------------------- embeddings


def render_embeddings(latents: np.ndarray, params: LatentParameters, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Chunks of 2048-d non-negative features: ReLU(W2 tanh(W1 z + b1) + b2 + noise), rescaled."""
    hidden = params.hidden_units
    w1 = rng.normal(0.0, 1.5 / np.sqrt(params.latent_dim), size=(params.latent_dim, hidden)).astype(np.float32)
    b1 = rng.normal(0.0, 0.3, size=hidden).astype(np.float32)
    w2 = rng.normal(0.0, 1.0 / np.sqrt(hidden), size=(hidden, params.embedding_dim)).astype(np.float32)
    b2 = rng.normal(0.45, 0.3, size=params.embedding_dim).astype(np.float32)
    for start in range(0, latents.shape[0], RENDER_CHUNK_ROWS):
        stop = min(start + RENDER_CHUNK_ROWS, latents.shape[0])
        features = np.tanh(latents[start:stop].astype(np.float32) @ w1 + b1) @ w2 + b2
        features += params.embedding_noise * rng.standard_normal(features.shape, dtype=np.float32)
        np.maximum(features, 0.0, out=features)
        features *= np.float32(0.7)
        yield features


# --------------------------------------------------------------------------- the whole data set


def generate_latent(params: LatentParameters, seed: int) -> LatentDataset:
    """Generate a data set; the same parameters and seed give identical output."""
    catalogue_seed, sales_seed, id_seed, embedding_seed = np.random.SeedSequence([seed, 0x1A7E]).spawn(4)
    catalogue = make_catalogue(params, np.random.default_rng(catalogue_seed))
    user, item, time_ms = simulate_sales(params, catalogue, np.random.default_rng(sales_seed))
    id_rng = np.random.default_rng(id_seed)
    n_items = catalogue["artist"].size
    item_ids = unique_ids(id_rng, n_items, 10_000)
    artist_ids = unique_ids(id_rng, params.n_artists, 1_000)
    customer_ids = unique_ids(id_rng, params.n_users, 15_000)
    # Rows in no particular order (the catalogue is built artist by artist).
    shuffle = id_rng.permutation(n_items)
    artworks = pd.DataFrame(
        {
            "id": item_ids[shuffle],
            "artist_id": artist_ids[catalogue["artist"][shuffle]],
            "upload_date": catalogue["upload_ms"][shuffle].astype("datetime64[ms]"),
            "original": catalogue["original"][shuffle],
            "medium_id": catalogue["medium"][shuffle],
        }
    )
    # As in the real file: row keys numbered in time order, rows in no particular order.
    key = np.empty(item.size, dtype=np.int64)
    key[np.argsort(time_ms, kind="stable")] = np.arange(1, item.size + 1)
    order = id_rng.permutation(item.size)
    sales = pd.DataFrame(
        {
            "id": key[order],
            "customer_id": customer_ids[user[order]],
            "artwork_id": item_ids[item[order]],
            "order_date": time_ms[order].astype("datetime64[ms]"),
        }
    )
    log.info(
        "latent-factor model: %d works by %d artists, %d sales to %d customers",
        n_items,
        params.n_artists,
        len(sales),
        sales["customer_id"].nunique(),
    )
    return LatentDataset(artworks, sales, catalogue["point"][shuffle], params, embedding_seed)


def format_research_time(values: pd.Series) -> pd.Series:
    """'YYYY-MM-DD HH:MM:SS.fff' with trailing zeros of the milliseconds dropped, as in the real files."""
    text = values.dt.strftime("%Y-%m-%d %H:%M:%S.%f").str[:-3].str.rstrip("0")
    return text.str.rstrip(".")


def write_research_layout(data: LatentDataset, folder: str | Path) -> dict[str, Path]:
    """Write valid_artworks.csv, valid_sales.csv and embeddings.npy into ``folder``.

    All three are written to temporary files first and renamed into place only
    when all are complete, so a failure leaves none of them behind.
    """
    folder = Path(folder)
    artworks = data.artworks.assign(
        upload_date=format_research_time(data.artworks["upload_date"]),
        original=np.where(data.artworks["original"], "t", "f"),
    )
    sales = data.sales.assign(order_date=format_research_time(data.sales["order_date"]))
    paths = {
        "artworks": folder / RESEARCH_ARTWORKS,
        "sales": folder / RESEARCH_SALES,
        "embeddings": folder / LATENT_EMBEDDINGS,
    }
    with contextlib.ExitStack() as stack:
        tmp = {name: stack.enter_context(atomic_path(path)) for name, path in paths.items()}
        artworks.to_csv(tmp["artworks"], index=False)
        sales.to_csv(tmp["sales"], index=False)
        write_embeddings_rows(tmp["embeddings"], data.artworks["id"].astype(str).tolist(), data.embedding_chunks())
    return paths
