"""The data set statistics on a hand-made purchase log, against counts done the slow obvious way."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from curatornet.data.stats import dataset_statistics

# Items 0..7: artists a a b b c c, then two items of unknown artist.
ARTISTS = ["a", "a", "b", "b", "c", "c", None, None]
# (user, basket, items)
BASKETS = [
    (0, 0, [0, 2]),
    (0, 1, [1, 4]),  # 1: artist a, bought before -> known; 4: c, new
    (0, 2, [5, 3, 6]),  # 5: c (basket 1) known; 3: b (basket 0) known; 6: unknown artist, left out
    (1, 0, [4]),
    (1, 1, [5]),  # c again: known
    (2, 0, [0, 1]),  # a single basket: no later basket
    (3, 0, [2]),
    (3, 1, [0, 3]),  # 0: a new; 3: b known (the same basket's 0 does not count as earlier)
]


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    items = pd.DataFrame(
        {
            "item": np.arange(len(ARTISTS), dtype=np.int32),
            "artist_id": pd.Series(ARTISTS, dtype=object),
            "upload_time": pd.Timestamp("2014-01-01"),
            "one_of_a_kind": False,
        }
    )
    rows = [(u, b, i) for u, b, basket in BASKETS for i in basket]
    purchases = pd.DataFrame(rows, columns=["user", "basket", "item"])
    purchases["time"] = pd.Timestamp("2015-01-01") + pd.to_timedelta(purchases["basket"], unit="D")
    last = purchases.groupby("user")["basket"].transform("max")
    purchases["split"] = np.where((last >= 1) & (purchases["basket"] == last), "test", "train")
    return items, purchases


def brute_force_pair_share(groups: list[list[int]]) -> float:
    same = total = 0
    for group in groups:
        known = [i for i in group if ARTISTS[i] is not None]
        for x, y in itertools.permutations(known, 2):
            total += 1
            same += ARTISTS[x] == ARTISTS[y]
    return same / total


def test_artist_loyalty_statistics_match_counting_by_hand():
    stats = dataset_statistics(*frames())
    # Later-basket rows with a known artist: 1, 4, 5, 3, 5, 0, 3 -> known before: 1, 5, 3, 5, 3.
    assert stats["later_basket_known_artist_share"] == pytest.approx(5 / 7)
    baskets = [items for _, _, items in BASKETS]
    histories = [sum((items for u, _, items in BASKETS if u == user), []) for user in range(4)]
    assert stats["same_artist_pair_share_basket"] == pytest.approx(brute_force_pair_share(baskets))
    assert stats["same_artist_pair_share_user"] == pytest.approx(brute_force_pair_share(histories))
    assert stats["users_with_test_basket"] == 3 and stats["users_with_valid_basket"] == 0


def test_loyalty_share_is_nan_without_returning_buyers():
    items, purchases = frames()
    single = purchases[purchases["user"] == 2].assign(split="train")
    assert np.isnan(dataset_statistics(items, single)["later_basket_known_artist_share"])
