"""Test cases on disk, so that every evaluation job reads the same cases instead of replaying the inventory.

A split's cases are two Parquet files: one row per evaluated user (user,
user_id, time, profile, truth, n_candidates, train_items:
:meth:`~curatornet.evaluation.protocol.Cases.to_frame`), and one row
per item with the window in which it is in the inventory (``available_from``
and ``removed_after``, int64 milliseconds, with the protocol's sentinels for
"always" and "never").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from curatornet.errors import InputError
from curatornet.evaluation.evaluate import to_table
from curatornet.evaluation.protocol import EVALUATED_SPLITS, Cases
from curatornet.io import read_frame, write_parquet

USER_COLUMNS = ("user", "user_id", "time", "profile", "truth", "n_candidates", "train_items")
INVENTORY_SCHEMA = pa.schema([("item", pa.int32()), ("available_from", pa.int64()), ("removed_after", pa.int64())])


def write_cases(cases: Cases, users_path: str | Path, inventory_path: str | Path) -> None:
    """Write ``cases`` as its two files (each atomically)."""
    write_parquet(to_table(cases.to_frame()), users_path)
    inventory = pd.DataFrame(
        {
            "item": np.arange(cases.n_items, dtype=np.int32),
            "available_from": cases.available_from,
            "removed_after": cases.removed_after,
        }
    )
    write_parquet(inventory, inventory_path, INVENTORY_SCHEMA)


def read_cases(users_path: str | Path, inventory_path: str | Path, split: str) -> Cases:
    """The cases of ``split`` written by :func:`write_cases`."""
    users = read_frame(users_path, USER_COLUMNS)
    inventory = read_frame(inventory_path, INVENTORY_SCHEMA.names).sort_values("item")
    if not np.array_equal(inventory["item"].to_numpy(), np.arange(len(inventory))):
        raise InputError(inventory_path, "item", inventory["item"].head().tolist(), "item indexes must be dense 0..N-1")
    times = users["time"].to_numpy().astype("datetime64[ms]").astype(np.int64)
    return Cases(
        users=users["user"].to_numpy(dtype=np.int32),
        user_ids=users["user_id"].astype(str).to_numpy(dtype=object),
        times=times,
        profiles=[np.asarray(p, dtype=np.int32) for p in users["profile"]],
        truth=[np.asarray(t, dtype=np.int32) for t in users["truth"]],
        available_from=inventory["available_from"].to_numpy(dtype=np.int64),
        removed_after=inventory["removed_after"].to_numpy(dtype=np.int64),
        split=split,
        train_items=users["train_items"].to_numpy(dtype=np.int32),
    )


def read_split_cases(inputs) -> list[Cases]:
    """The cases of every split a job's named inputs hold (``<split>_cases``, ``<split>_inventory``).

    Splits without users (no user has the baskets they need) are left out.
    """
    found = []
    for split in EVALUATED_SPLITS:
        if f"{split}_cases" in inputs.keys():
            cases = read_cases(inputs[f"{split}_cases"], inputs[f"{split}_inventory"], split)
            if len(cases):
                found.append(cases)
    return found
