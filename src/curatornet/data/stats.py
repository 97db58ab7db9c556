"""Descriptive statistics of a data set, as listed in the UGallery README.

One function computes them from the canonical frames (items and purchases as
written by :mod:`curatornet.data.prepare`), so the generated data set, the real
files and the report all use the same definitions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Distribution buckets reported individually (1..10); larger values go into the max.
HISTOGRAM_BUCKETS = range(1, 11)

SECONDS_PER_DAY = 86_400.0


def _histogram(counts: pd.Series, prefix: str) -> dict[str, float]:
    tally = counts.value_counts()
    stats = {f"{prefix}_{k}": float(tally.get(k, 0)) for k in HISTOGRAM_BUCKETS}
    stats[f"{prefix}_max"] = float(counts.max()) if len(counts) else 0.0
    return stats


def _same_artist_pair_share(purchases: pd.DataFrame, artist_codes: np.ndarray, group: list[str]) -> float:
    """Share of ordered pairs of purchase rows within a group that have the same artist.

    Computed from counts per (group, artist) so it needs no pair enumeration:
    pairs in a group = n(n-1), same-artist pairs = sum over artists of m(m-1).
    """
    frame = purchases[group].copy()
    frame["artist"] = artist_codes[purchases["item"].to_numpy()]
    frame = frame[frame["artist"] >= 0]
    group_sizes = frame.groupby(group).size().to_numpy(dtype=np.float64)
    artist_sizes = frame.groupby(group + ["artist"]).size().to_numpy(dtype=np.float64)
    all_pairs = np.sum(group_sizes * (group_sizes - 1))
    same_pairs = np.sum(artist_sizes * (artist_sizes - 1))
    return float(same_pairs / all_pairs) if all_pairs else float("nan")


def _later_basket_known_artist_share(purchases: pd.DataFrame, artist_codes: np.ndarray) -> float:
    """Share of purchase rows in a user's later baskets (after the first) whose artist the
    user had bought from in an earlier basket; rows of unknown artists are left out."""
    frame = purchases[["user", "basket"]].copy()
    frame["artist"] = artist_codes[purchases["item"].to_numpy()]
    frame = frame[frame["artist"] >= 0]
    first_basket_with_artist = frame.groupby(["user", "artist"])["basket"].transform("min")
    later = frame["basket"].to_numpy() > frame.groupby("user")["basket"].transform("min").to_numpy()
    if not later.any():
        return float("nan")
    return float(np.mean(first_basket_with_artist.to_numpy()[later] < frame["basket"].to_numpy()[later]))


def dataset_statistics(items: pd.DataFrame, purchases: pd.DataFrame) -> dict[str, float | str]:
    """The UGallery README's statistics for canonical ``items`` and ``purchases`` frames.

    ``items`` needs ``item``, ``artist_id``, ``upload_time``, ``one_of_a_kind``;
    ``purchases`` needs ``user``, ``item``, ``time``, ``basket``, ``split``.
    Dates are ISO strings, everything else numbers.
    """
    items = items.sort_values("item").reset_index(drop=True)
    stats: dict[str, float | str] = {}
    n_items = len(items)
    one_of_a_kind = items["one_of_a_kind"].to_numpy(dtype=bool)
    artist_codes, artist_names = pd.factorize(items["artist_id"], use_na_sentinel=True)

    stats["purchase_rows"] = float(len(purchases))
    stats["users"] = float(purchases["user"].nunique())
    stats["purchased_items"] = float(purchases["item"].nunique())
    stats["inventory_items"] = float(n_items)

    items_per_artist = pd.Series(artist_codes[artist_codes >= 0]).value_counts()
    stats["artists"] = float(len(artist_names))
    purchased_artists = artist_codes[purchases["item"].to_numpy()]
    stats["artists_purchased"] = float(np.unique(purchased_artists[purchased_artists >= 0]).size)
    stats["items_per_artist_mean"] = float(items_per_artist.mean()) if len(items_per_artist) else float("nan")
    stats["items_per_artist_median"] = float(items_per_artist.median()) if len(items_per_artist) else float("nan")
    stats["items_per_artist_max"] = float(items_per_artist.max()) if len(items_per_artist) else float("nan")
    stats["artists_single_item"] = float((items_per_artist == 1).sum())

    purchased_flag = one_of_a_kind[purchases["item"].to_numpy()]
    sales_per_item = purchases["item"].value_counts()
    sold_kind = one_of_a_kind[sales_per_item.index.to_numpy()]
    stats["one_of_a_kind_items"] = float(one_of_a_kind.sum())
    stats["one_of_a_kind_item_share"] = float(one_of_a_kind.mean()) if n_items else float("nan")
    stats["one_of_a_kind_purchase_rows"] = float(purchased_flag.sum())
    stats["one_of_a_kind_purchase_share"] = float(purchased_flag.mean()) if len(purchases) else float("nan")
    stats["one_of_a_kind_sold_more_than_once"] = float(((sales_per_item > 1) & sold_kind).sum())
    stats["other_items_sold_more_than_once"] = float(((sales_per_item > 1) & ~sold_kind).sum())

    basket_sizes = purchases.groupby(["user", "basket"]).size()
    baskets_per_user = basket_sizes.groupby(level="user").size()
    items_per_user = purchases.groupby("user").size()
    stats["baskets"] = float(len(basket_sizes))
    stats.update(_histogram(basket_sizes, "basket_size"))
    stats.update(_histogram(baskets_per_user, "baskets_per_user"))
    stats.update(_histogram(items_per_user, "items_per_user"))
    stats["users_with_test_basket"] = float(purchases.loc[purchases["split"] == "test", "user"].nunique())
    stats["users_with_valid_basket"] = float(purchases.loc[purchases["split"] == "valid", "user"].nunique())

    times = pd.to_datetime(purchases["time"])
    uploads = pd.to_datetime(items["upload_time"])
    stats["first_sale"] = times.min().date().isoformat() if len(times) else ""
    stats["last_sale"] = times.max().date().isoformat() if len(times) else ""
    stats["first_upload"] = uploads.min().date().isoformat() if uploads.notna().any() else ""
    stats["last_upload"] = uploads.max().date().isoformat() if uploads.notna().any() else ""

    basket_times = (
        purchases[["user", "basket", "time"]].drop_duplicates(["user", "basket"]).sort_values(["user", "basket"])
    )
    gaps = basket_times.groupby("user")["time"].diff().dropna().dt.total_seconds() / SECONDS_PER_DAY
    stats["median_basket_gap_days"] = float(gaps.median()) if len(gaps) else float("nan")
    lag = (times.to_numpy() - uploads.to_numpy()[purchases["item"].to_numpy()]) / np.timedelta64(1, "s")
    lag = lag[~np.isnan(lag)] / SECONDS_PER_DAY
    stats["median_upload_to_sale_days"] = float(np.median(lag)) if lag.size else float("nan")

    # How coherent baskets are compared with whole histories (planted structure in the
    # generated data; a property of taste in the real data).
    stats["same_artist_pair_share_basket"] = _same_artist_pair_share(purchases, artist_codes, ["user", "basket"])
    stats["same_artist_pair_share_user"] = _same_artist_pair_share(purchases, artist_codes, ["user"])
    # Artist loyalty across time: how often a returning buyer comes back to an artist.
    stats["later_basket_known_artist_share"] = _later_basket_known_artist_share(purchases, artist_codes)
    return stats


def statistics_frame(stats: dict[str, float | str]) -> pd.DataFrame:
    """The statistics as a two-column table (``statistic``, ``value``) for stats.csv."""
    return pd.DataFrame(
        {"statistic": list(stats), "value": [str(v) if isinstance(v, str) else repr(float(v)) for v in stats.values()]}
    )
