"""Loaders for the UGallery files: the research layout and the public-release layouts.

All layouts come out as one :class:`RawDataset` with source ids as strings:

- research: ``valid_artworks.csv`` (id, artist_id, upload_date, original t/f,
  medium_id) and ``valid_sales.csv`` (id, customer_id, artwork_id, order_date);
- public release: ``ugallery_inventory.csv`` or ``inventory.csv``
  (artwork_id_hash, artist_id_hash, upload_timestamp, optional ``original``)
  and ``ugallery_purchases.csv`` (one row per item) or ``purchases.csv``
  (one row per basket, item ids written as a Python list).

Without an ``original`` column an item counts as one-of-a-kind when it was sold
exactly once (the public release's rule). Every problem raises
:class:`~curatornet.errors.InputError` naming the file, column and value.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from curatornet.data.layout import Layout, find_layout
from curatornet.errors import InputError

log = logging.getLogger(__name__)

ORIGINAL_TRUE = {"t", "true", "1", "yes", "y"}
ORIGINAL_FALSE = {"f", "false", "0", "no", "n"}
#: Numbers above this are epoch milliseconds rather than seconds.
EPOCH_MS_THRESHOLD = 1e11


@dataclass
class RawDataset:
    """Inventory and purchases with source ids, before dense numbering.

    ``items``: item_id, artist_id (None if unknown), upload_time (NaT if
    unknown), one_of_a_kind. ``purchases``: user_id, item_id, time.
    """

    items: pd.DataFrame
    purchases: pd.DataFrame
    layout: Layout


def read_csv_checked(path: Path, required: list[str]) -> pd.DataFrame:
    """Read a CSV with every column as string, failing clearly on a missing file or column."""
    if not path.is_file():
        raise InputError(path, None, str(path), "file does not exist")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError as exc:
        raise InputError(path, None, str(path), "file is empty (no header)") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(path, None, str(path), f"not a readable CSV file ({exc})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    for column in required:
        if column not in frame.columns:
            raise InputError(path, column, list(frame.columns), "required column is missing")
    return frame


def require_values(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """The stripped column; an empty cell is an error naming its row."""
    values = frame[column].str.strip()
    empty = values.isna() | (values == "")
    if empty.any():
        row = int(np.flatnonzero(empty.to_numpy())[0])
        raise InputError(path, column, f"row {row + 2}: {frame[column].iloc[row]!r}", "value is missing")
    return values


def parse_timestamps(
    values: pd.Series, path: Path, column: str, allow_missing: bool, not_after: pd.Timestamp | None = None
) -> pd.Series:
    """ISO-like text (milliseconds optional, 'T' or space) or epoch seconds/milliseconds -> naive datetime64[ms].

    Times with a zone are converted to UTC. A time after ``not_after`` (the
    run's reference time, naive UTC) is an error naming its row.
    """
    text = values.str.strip()
    missing = text.isna() | (text == "")
    if missing.any() and not allow_missing:
        row = int(np.flatnonzero(missing.to_numpy())[0])
        raise InputError(path, column, f"row {row + 2}: empty", "timestamp is missing")
    present = text[~missing]
    numeric = pd.to_numeric(present, errors="coerce")
    if len(present) and numeric.notna().all():
        unit = "ms" if float(numeric.abs().max()) > EPOCH_MS_THRESHOLD else "s"
        parsed_present = pd.to_datetime(numeric, unit=unit, errors="coerce")
    else:
        parsed_present = pd.to_datetime(present, format="ISO8601", errors="coerce", utc=True).dt.tz_convert(None)
    bad = parsed_present.isna()
    if bad.any():
        position = int(np.flatnonzero(bad.to_numpy())[0])
        row = int(np.flatnonzero((~missing).to_numpy())[position])
        raise InputError(path, column, f"row {row + 2}: {present.iloc[position]!r}", "unparseable timestamp")
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ms]")
    parsed[~missing] = parsed_present.astype("datetime64[ms]")
    if not_after is not None:
        late = (parsed > not_after).to_numpy()
        if late.any():
            row = int(np.flatnonzero(late)[0])
            raise InputError(
                path,
                column,
                f"row {row + 2}: {values.iloc[row]!r}",
                f"later than the run's reference time {not_after.isoformat()} (dataset.reference_time; "
                f"{int(late.sum())} rows)",
            )
    return parsed


def parse_original_flags(values: pd.Series, path: Path, column: str) -> pd.Series:
    text = values.str.strip().str.lower()
    flags = text.isin(ORIGINAL_TRUE)
    unknown = ~(flags | text.isin(ORIGINAL_FALSE))
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise InputError(path, column, f"row {row + 2}: {values.iloc[row]!r}", "expected t or f")
    return flags


def _optional_ids(values: pd.Series) -> pd.Series:
    text = values.str.strip()
    return text.where(text.notna() & (text != ""), None).astype(object)


def load_research_items(path: Path, not_after: pd.Timestamp | None = None) -> pd.DataFrame:
    frame = read_csv_checked(path, ["id", "artist_id", "upload_date", "original"])
    return pd.DataFrame(
        {
            "item_id": require_values(frame, "id", path),
            "artist_id": _optional_ids(frame["artist_id"]),
            "upload_time": parse_timestamps(frame["upload_date"], path, "upload_date", True, not_after),
            "one_of_a_kind": parse_original_flags(frame["original"], path, "original"),
        }
    )


def load_research_purchases(path: Path, not_after: pd.Timestamp | None = None) -> pd.DataFrame:
    frame = read_csv_checked(path, ["customer_id", "artwork_id", "order_date"])
    return pd.DataFrame(
        {
            "user_id": require_values(frame, "customer_id", path),
            "item_id": require_values(frame, "artwork_id", path),
            "time": parse_timestamps(frame["order_date"], path, "order_date", False, not_after),
        }
    )


def load_public_items(path: Path, not_after: pd.Timestamp | None = None) -> pd.DataFrame:
    frame = read_csv_checked(path, ["artwork_id_hash", "artist_id_hash", "upload_timestamp"])
    items = pd.DataFrame(
        {
            "item_id": require_values(frame, "artwork_id_hash", path),
            "artist_id": _optional_ids(frame["artist_id_hash"]),
            "upload_time": parse_timestamps(frame["upload_timestamp"], path, "upload_timestamp", True, not_after),
        }
    )
    # The generator keeps the one-of-a-kind flag in an extra column; the release has none.
    if "original" in frame.columns:
        items["one_of_a_kind"] = parse_original_flags(frame["original"], path, "original")
    return items


def split_id_lists(values: pd.Series, path: Path, column: str) -> pd.Series:
    """Explode cells like "['a', 'b']" into one id per row (index kept, so rows map back)."""
    text = values.fillna("").str.strip()
    malformed = ~(text.str.startswith("[") & text.str.endswith("]"))
    if malformed.any():
        row = int(np.flatnonzero(malformed.to_numpy())[0])
        raise InputError(path, column, f"row {row + 2}: {values.iloc[row]!r}", "expected a list of ids like ['a', 'b']")
    ids = text.str[1:-1].str.split(",").explode().str.strip().str.strip("'\"").str.strip()
    return ids[ids.notna() & (ids != "")]


def load_public_purchases(path: Path, not_after: pd.Timestamp | None = None) -> pd.DataFrame:
    header = read_csv_checked(path, [])
    if "purchased_artwork_ids_hash" in header.columns:
        frame = read_csv_checked(path, ["user_id_hash", "purchased_artwork_ids_hash", "purchase_timestamp"])
        ids = split_id_lists(frame["purchased_artwork_ids_hash"], path, "purchased_artwork_ids_hash")
        users = require_values(frame, "user_id_hash", path)
        times = parse_timestamps(frame["purchase_timestamp"], path, "purchase_timestamp", False, not_after)
        rows = ids.index.to_numpy()
        return pd.DataFrame(
            {"user_id": users.to_numpy()[rows], "item_id": ids.to_numpy(), "time": times.to_numpy()[rows]}
        )
    frame = read_csv_checked(path, ["user_id_hash", "purchase_timestamp", "artwork_id_hash"])
    return pd.DataFrame(
        {
            "user_id": require_values(frame, "user_id_hash", path),
            "item_id": require_values(frame, "artwork_id_hash", path),
            "time": parse_timestamps(frame["purchase_timestamp"], path, "purchase_timestamp", False, not_after),
        }
    )


def check_consistency(items: pd.DataFrame, purchases: pd.DataFrame, layout: Layout) -> None:
    """Unique item ids, some purchases, and only purchases of known items."""
    duplicated = items["item_id"].duplicated()
    if duplicated.any():
        raise InputError(
            layout.inventory,
            "item id",
            items["item_id"][duplicated].iloc[0],
            f"item id appears more than once ({int(duplicated.sum())} repeats)",
        )
    if purchases.empty:
        raise InputError(layout.purchases, None, 0, "no purchases in the file")
    unknown = ~purchases["item_id"].isin(items["item_id"])
    if unknown.any():
        raise InputError(
            layout.purchases,
            "item id",
            purchases["item_id"][unknown].iloc[0],
            f"purchase of an item not in the inventory {layout.inventory.name} ({int(unknown.sum())} rows)",
        )


def load_inventory(folder: str | Path) -> tuple[pd.DataFrame, Path]:
    """The inventory alone (item_id, artist_id, upload_time[, one_of_a_kind]) and the file it came from."""
    layout = find_layout(folder)
    loader = load_research_items if layout.kind == "research" else load_public_items
    return loader(layout.inventory), layout.inventory


def load_ugallery(folder: str | Path, reference_time: pd.Timestamp | None = None) -> RawDataset:
    """Load the UGallery files in ``folder``, whichever layout they use.

    ``reference_time`` (naive UTC): no upload or purchase may lie after it.
    """
    layout = find_layout(folder)
    if layout.kind == "research":
        items = load_research_items(layout.inventory, reference_time)
        purchases = load_research_purchases(layout.purchases, reference_time)
    else:
        items = load_public_items(layout.inventory, reference_time)
        purchases = load_public_purchases(layout.purchases, reference_time)
    check_consistency(items, purchases, layout)
    if "one_of_a_kind" not in items.columns:
        sales = purchases["item_id"].value_counts()
        items["one_of_a_kind"] = items["item_id"].map(sales).fillna(0).to_numpy() == 1
    resold = purchases["item_id"][purchases["item_id"].duplicated()]
    resold_originals = items["item_id"][items["one_of_a_kind"]].isin(resold).sum()
    if resold_originals:
        log.warning("%d one-of-a-kind items are sold more than once in %s", resold_originals, layout.purchases)
    upload = purchases["item_id"].map(items.set_index("item_id")["upload_time"])
    early = int((purchases["time"] < upload).sum())
    if early:
        log.warning("%d purchases happen before their item's upload in %s", early, layout.purchases)
    log.info(
        "loaded %s layout from %s: %d items, %d purchase rows, %d users",
        layout.kind,
        folder,
        len(items),
        len(purchases),
        purchases["user_id"].nunique(),
    )
    return RawDataset(items=items.reset_index(drop=True), purchases=purchases.reset_index(drop=True), layout=layout)
