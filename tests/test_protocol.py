"""The inventory replay on a hand-made timeline, and the real UGallery check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from curatornet.errors import InputError
from curatornet.evaluation.evaluate import evaluate_scorer, gather_results
from curatornet.evaluation.protocol import build_cases
from curatornet.models.baselines import Oracle, RandomScorer

UGALLERY = Path(__file__).resolve().parents[1].parent / "shared" / "ugallery"


def _items(rows):
    frame = pd.DataFrame(rows, columns=["item_id", "artist_id", "upload_time", "one_of_a_kind"])
    frame.insert(0, "item", np.arange(len(frame), dtype=np.int32))
    frame["upload_time"] = pd.to_datetime(frame["upload_time"])
    return frame


def _purchases(rows):
    """rows: (user, item, time, split); the basket number follows the time."""
    frame = pd.DataFrame(rows, columns=["user", "item", "time", "split"])
    frame["time"] = pd.to_datetime(frame["time"])
    frame["user_id"] = "u" + frame["user"].astype(str)
    frame["basket"] = frame.groupby("user")["time"].rank(method="dense").astype(int) - 1
    return frame


@pytest.fixture()
def timeline():
    items = _items(
        [
            ("a", "x", "2020-01-01", True),  # 0: one-of-a-kind, sold to user 1 before the test
            ("b", "x", "2020-01-01", False),  # 1: a print, sold to user 1 before the test
            ("c", "y", "2020-01-05", True),  # 2: uploaded at the very instant of the test basket
            ("d", "y", "2020-01-06", True),  # 3: uploaded after the test
            ("e", "z", "2020-01-01", True),  # 4: in the test basket
            ("f", "z", "2020-01-01", True),  # 5: sold to user 2 at the test instant (simultaneous)
            ("g", "z", "2020-01-01", True),  # 6: never sold
            ("h", "z", None, True),  # 7: unknown upload time: present from the start
        ]
    )
    purchases = _purchases(
        [
            (0, 0, "2020-01-02", "train"),
            (0, 1, "2020-01-03", "train"),
            (0, 4, "2020-01-05", "test"),
            (0, 2, "2020-01-05", "test"),
            (0, 3, "2020-01-05", "test"),  # not uploaded yet: not ground truth
            (1, 5, "2020-01-05", "train"),
            (2, 1, "2020-01-01", "train"),  # the print is sold twice
            (2, 0, "2020-01-04", "test"),  # sold earlier to user 0: empty truth, user dropped
        ]
    )
    return items, purchases


def test_inventory_replay(timeline):
    items, purchases = timeline
    cases = build_cases(items, purchases)
    assert cases.users.tolist() == [0]
    assert cases.dropped_users.tolist() == [2]
    candidates = np.flatnonzero(cases.candidate_mask()[0]).tolist()
    # 0 (one-of-a-kind sold earlier) and 3 (uploaded later) are no candidates;
    # the print 1 is, even for the user who bought it; 2 was uploaded at the instant.
    assert candidates == [1, 2, 4, 5, 6, 7]
    assert cases.truth[0].tolist() == [2, 4]
    assert cases.profiles[0].tolist() == [0, 1]
    assert cases.n_candidates().tolist() == [6]
    assert cases.truth_mask()[0].nonzero()[0].tolist() == [2, 4]
    frame = cases.to_frame()
    assert frame.loc[0, "user_id"] == "u0" and frame.loc[0, "n_candidates"] == 6


def test_validation_rows_count_as_earlier_purchases(timeline):
    items, purchases = timeline
    with_valid = purchases.copy()
    with_valid.loc[1, "split"] = "valid"  # user 0's basket before the test basket
    cases = build_cases(items, with_valid)
    assert cases.users.tolist() == [0]
    assert cases.profiles[0].tolist() == [0, 1]
    assert cases.truth[0].tolist() == [2, 4]


def test_bad_input_names_field(timeline):
    items, purchases = timeline
    broken = purchases.copy()
    broken.loc[0, "item"] = 99
    with pytest.raises(InputError, match="'item'"):
        build_cases(items, broken)
    with pytest.raises(InputError, match="'split'"):
        build_cases(items, purchases.assign(split="dev"))
    with pytest.raises(InputError, match="upload_time"):
        build_cases(items.drop(columns="upload_time"), purchases)


def _ugallery_frames(folder: Path):
    """Canonical frames built straight from the two CSVs (independent of curatornet.data)."""
    sales = pd.read_csv(folder / "valid_sales.csv")
    art = pd.read_csv(folder / "valid_artworks.csv")
    art = art.sort_values("id").reset_index(drop=True)
    items = pd.DataFrame(
        {
            "item": np.arange(len(art), dtype=np.int32),
            "item_id": art["id"].astype(str),
            "artist_id": art["artist_id"].astype(str),
            "upload_time": pd.to_datetime(art["upload_date"], format="mixed"),
            "one_of_a_kind": art["original"].eq("t"),
        }
    )
    index = pd.Series(items["item"].to_numpy(), index=art["id"].to_numpy())
    sales["time"] = pd.to_datetime(sales["order_date"], format="mixed")
    purchases = pd.DataFrame(
        {
            "user": sales["customer_id"].rank(method="dense").astype(np.int32) - 1,
            "user_id": sales["customer_id"].astype(str),
            "item": index.loc[sales["artwork_id"]].to_numpy(),
            "time": sales["time"],
        }
    )
    purchases["basket"] = purchases.groupby("user")["time"].rank(method="dense").astype(np.int32) - 1
    n_baskets = purchases.groupby("user")["basket"].transform("max") + 1
    last = purchases["basket"] == n_baskets - 1
    purchases["split"] = np.where(last & (n_baskets >= 2), "test", "train")
    return items, purchases


@pytest.mark.ugallery
def test_real_ugallery_protocol():
    if not (UGALLERY / "valid_sales.csv").exists():
        pytest.skip(f"real UGallery files not found at {UGALLERY}")
    items, purchases = _ugallery_frames(UGALLERY)
    cases = build_cases(items, purchases)
    assert len(cases) == 728
    assert round(float(np.mean([len(t) for t in cases.truth])), 4) == 1.3104
    assert float(np.median(cases.n_candidates())) == 2233
    runs = [({"method": "oracle"}, Oracle()), ({"method": "random"}, RandomScorer(seed=7))]
    result = gather_results([evaluate_scorer(key, scorer, cases, (20, 100), 100) for key, scorer in runs])
    per_user = result.per_user.set_index("method")
    oracle = per_user.loc["oracle"]
    assert round(oracle["precision@20"].mean(), 4) == 0.0655
    assert round(oracle["precision@100"].mean(), 4) == 0.0131
    assert oracle["auc"].mean() == 1.0 and oracle["ndcg@20"].mean() == pytest.approx(1.0)
    assert abs(per_user.loc["random", "auc"].mean() - 0.5) < 0.03
