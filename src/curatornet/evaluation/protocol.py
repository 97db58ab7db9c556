"""The evaluation protocol of the paper's Table 2: an inventory replay.

Uploads and purchases are replayed in time order, an upload before a purchase
at the same instant. The inventory holds every uploaded item minus the
one-of-a-kind items already sold; prints and photographs stay after a sale.
When a test user's last basket comes up, and before it is applied, the whole
current inventory is ranked: the profile is all of the user's earlier
purchases and the ground truth is the basket's items that are in the inventory.

The validation baskets (``split == "valid"``, the last training basket of
users with at least three baskets) are evaluated the same way at their own
instant; model selection reads them, never the test baskets.

The replay has a closed form that this module uses: at instant t an item is in
the inventory when it was uploaded at or before t and it is not a
one-of-a-kind item sold strictly before t. (Purchases by other users at the
very same instant count as simultaneous with the test basket, so they remove
nothing yet.) Items without an upload time count as present from the start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from curatornet.artifacts import PURCHASE_SPLITS
from curatornet.errors import InputError

log = logging.getLogger(__name__)

ITEM_COLUMNS = ("item", "item_id", "artist_id", "upload_time", "one_of_a_kind")
PURCHASE_COLUMNS = ("user", "user_id", "item", "time", "basket", "split")
_NEVER = np.iinfo(np.int64).max
_ALWAYS = np.iinfo(np.int64).min


#: The splits whose baskets are evaluated (train baskets are only ever profiles).
EVALUATED_SPLITS = ("valid", "test")


@dataclass
class Cases:
    """The users of one evaluated split and, per user, profile, ground truth and the basket's instant."""

    users: np.ndarray  # int32 (n,)
    user_ids: np.ndarray  # object (n,)
    times: np.ndarray  # int64 ms (n,), instant of the evaluated basket
    profiles: list[np.ndarray]  # int32 item indexes (the user's earlier purchases)
    truth: list[np.ndarray]  # int32 item indexes (test basket items in the inventory)
    available_from: np.ndarray  # int64 ms per item, upload time (_ALWAYS when unknown)
    removed_after: np.ndarray  # int64 ms per item, first sale of a one-of-a-kind item (_NEVER otherwise)
    dropped_users: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    split: str = "test"
    train_items: np.ndarray | None = None  # int32 (n,), distinct training items of each user (segments)

    def __len__(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.available_from)

    def candidate_mask(self, rows: slice | np.ndarray = slice(None)) -> np.ndarray:
        """bool (len(rows), n_items): the inventory at each selected user's test instant."""
        t = self.times[rows][:, None]
        return (self.available_from[None, :] <= t) & ~(self.removed_after[None, :] < t)

    def truth_mask(self, rows: slice | np.ndarray = slice(None)) -> np.ndarray:
        """bool (len(rows), n_items): the ground truth of each selected user."""
        selected = np.arange(len(self))[rows]
        mask = np.zeros((len(selected), self.n_items), dtype=bool)
        for row, index in enumerate(selected):
            mask[row, self.truth[index]] = True
        return mask

    def n_candidates(self, chunk: int = 1024) -> np.ndarray:
        """Inventory size at each user's test instant."""
        counts = [self.candidate_mask(slice(i, i + chunk)).sum(axis=1) for i in range(0, len(self), chunk)]
        return np.concatenate(counts).astype(np.int64) if counts else np.zeros(0, dtype=np.int64)

    def to_frame(self) -> pd.DataFrame:
        """One row per test user (written as results/evaluation/cases.parquet)."""
        return pd.DataFrame(
            {
                "user": self.users.astype(np.int32),
                "user_id": pd.array(self.user_ids, dtype="string"),
                "time": pd.to_datetime(self.times, unit="ms"),
                "profile": [p.astype(np.int32) for p in self.profiles],
                "truth": [t.astype(np.int32) for t in self.truth],
                "n_candidates": self.n_candidates(),
                "train_items": self.train_items if self.train_items is not None else np.zeros(len(self), np.int32),
            }
        )


def _require(frame: pd.DataFrame, columns, source: str) -> None:
    for column in columns:
        if column not in frame.columns:
            raise InputError(source, column, list(frame.columns), "required column is missing")


def _millis(values: pd.Series, source: str, column: str, allow_missing: bool) -> np.ndarray:
    try:
        times = pd.to_datetime(values)
    except (ValueError, TypeError) as exc:
        raise InputError(source, column, values.head(3).tolist(), f"not a timestamp ({exc})") from exc
    missing = times.isna().to_numpy()
    if missing.any() and not allow_missing:
        raise InputError(source, column, values[missing].head(3).tolist(), "missing timestamp")
    out = np.full(len(times), _ALWAYS, dtype=np.int64)
    present = ~missing
    out[present] = times[present].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    return out


def build_cases(
    items: pd.DataFrame,
    purchases: pd.DataFrame,
    split: str = "test",
    items_source: str = "items.parquet",
    purchases_source: str = "purchases.parquet",
) -> Cases:
    """Replay the inventory and return the cases of ``split`` ('test' or 'valid').

    Users with an empty ground truth are dropped, counted in the log and in
    ``dropped_users``. The test split must keep users; the validation split may
    have none (no user with three baskets), and then model selection falls
    back to the validation triples (see :mod:`curatornet.models.train`).
    """
    if split not in EVALUATED_SPLITS:
        raise InputError(None, "split", split, f"evaluated splits are {EVALUATED_SPLITS}")
    _require(items, ITEM_COLUMNS, items_source)
    _require(purchases, PURCHASE_COLUMNS, purchases_source)
    n_items = len(items)
    item_index = items["item"].to_numpy()
    if n_items and not np.array_equal(np.sort(item_index), np.arange(n_items)):
        raise InputError(items_source, "item", item_index[:5].tolist(), "item indexes must be dense 0..N-1")
    order = np.argsort(item_index)
    upload = _millis(items["upload_time"], items_source, "upload_time", allow_missing=True)[order]
    one_of_a_kind = items["one_of_a_kind"].fillna(False).to_numpy(dtype=bool)[order]

    bought = purchases["item"].to_numpy()
    bad = (bought < 0) | (bought >= n_items)
    if bad.any():
        raise InputError(purchases_source, "item", bought[bad][:5].tolist(), f"item index outside 0..{n_items - 1}")
    splits = purchases["split"].astype("string")
    unknown = ~splits.isin(list(PURCHASE_SPLITS)).to_numpy()
    if unknown.any():
        raise InputError(
            purchases_source, "split", splits[unknown].head(3).tolist(), f"split must be one of {PURCHASE_SPLITS}"
        )
    when = _millis(purchases["time"], purchases_source, "time", allow_missing=False)
    users = purchases["user"].to_numpy().astype(np.int64)

    # First sale of each item; only one-of-a-kind items leave the inventory.
    first_sale = np.full(n_items, _NEVER, dtype=np.int64)
    np.minimum.at(first_sale, bought, when)
    removed_after = np.where(one_of_a_kind, first_sale, _NEVER)

    is_test = (splits == split).to_numpy()
    is_train = (splits == "train").to_numpy()
    test_users = np.unique(users[is_test])
    test_time = {}
    for user, moment in zip(users[is_test], when[is_test]):
        if test_time.setdefault(user, moment) != moment:
            raise InputError(
                purchases_source, "time", int(user), f"a user's {split} rows must form one basket (one timestamp)"
            )
    train_pairs = pd.DataFrame({"user": users[is_train], "item": bought[is_train]})
    train_items = train_pairs.drop_duplicates().groupby("user").size()

    frame = pd.DataFrame({"user": users, "item": bought, "time": when, "test": is_test})
    frame = frame[frame["user"].isin(test_users)].sort_values(["user", "time", "item"], kind="stable")
    kept_users, kept_ids, kept_times, profiles, truths, dropped = [], [], [], [], [], []
    user_ids = purchases.groupby("user", sort=False)["user_id"].first()
    for user, rows in frame.groupby("user", sort=True):
        moment = test_time[user]
        earlier = rows["item"].to_numpy()[rows["time"].to_numpy() < moment]
        basket = np.unique(rows["item"].to_numpy()[rows["test"].to_numpy()])
        in_inventory = (upload[basket] <= moment) & ~(removed_after[basket] < moment)
        truth = basket[in_inventory]
        if len(truth) == 0:
            dropped.append(user)
            continue
        kept_users.append(user)
        kept_ids.append(str(user_ids.loc[user]))
        kept_times.append(moment)
        profiles.append(np.unique(earlier).astype(np.int32))
        truths.append(truth.astype(np.int32))
    cases = Cases(
        users=np.asarray(kept_users, dtype=np.int32),
        user_ids=np.asarray(kept_ids, dtype=object),
        times=np.asarray(kept_times, dtype=np.int64),
        profiles=profiles,
        truth=truths,
        available_from=upload,
        removed_after=removed_after,
        dropped_users=np.asarray(dropped, dtype=np.int32),
        split=split,
        train_items=train_items.reindex(kept_users, fill_value=0).to_numpy().astype(np.int32),
    )
    log.info(
        "%s users: %d kept, %d dropped (no basket item in the inventory); mean truth %.4f; median inventory %.0f",
        split,
        len(cases),
        len(dropped),
        float(np.mean([len(t) for t in truths])) if truths else float("nan"),
        float(np.median(cases.n_candidates())) if len(cases) else float("nan"),
    )
    if len(cases) == 0 and split == "test":
        raise InputError(purchases_source, "split", split, f"no {split} user has a basket item in the inventory")
    return cases
