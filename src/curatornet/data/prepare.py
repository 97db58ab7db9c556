"""Build the canonical artifacts (items, embeddings, purchases, stats) from a raw data set.

Everything is read and checked before anything is written, and every file is
written atomically, so a bad input leaves no output behind.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from curatornet.artifacts import ITEMS_SCHEMA, PURCHASES_SCHEMA, embeddings_schema
from curatornet.config import parse_reference_time
from curatornet.data.embeddings import check_embeddings_vary, read_embeddings_npy, synthetic_embeddings
from curatornet.data.layout import data_folder, embeddings_file, expected_embedding_dim
from curatornet.data.stats import dataset_statistics, statistics_frame
from curatornet.data.ugallery import RawDataset, load_ugallery
from curatornet.io import write_csv, write_parquet

log = logging.getLogger(__name__)

#: Target size of a row group of embeddings.parquet (float32 values).
EMBEDDING_ROW_GROUP_BYTES = 64 << 20


@dataclass
class CanonicalData:
    """The canonical frames; ``embeddings`` is (n_items, dim) float32 in item order."""

    items: pd.DataFrame
    embeddings: np.ndarray
    purchases: pd.DataFrame
    stats: dict[str, float | str]


def canonical_items(raw_items: pd.DataFrame) -> pd.DataFrame:
    """Dense ``item`` 0..N-1 over the inventory, in sorted item_id order (deterministic)."""
    items = raw_items.sort_values("item_id", kind="stable").reset_index(drop=True)
    items.insert(0, "item", np.arange(len(items), dtype=np.int32))
    items["upload_time"] = items["upload_time"].astype("datetime64[ms]")
    items["one_of_a_kind"] = items["one_of_a_kind"].astype(bool)
    return items[ITEMS_SCHEMA.names]


def canonical_purchases(raw_purchases: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Dense users, item numbers, basket order and the train/valid/test split.

    A basket is one user's purchases at the same timestamp; baskets are
    numbered 0.. in time order per user. The last basket of every user with at
    least two baskets is ``test``; the last training basket of every user with
    at least three (their second-to-last basket) is ``valid``, so that every
    such user keeps at least one ``train`` basket.
    """
    frame = raw_purchases.copy()
    frame["item"] = pd.Index(items["item_id"]).get_indexer(frame["item_id"]).astype(np.int32)
    user_codes, _ = pd.factorize(frame["user_id"], sort=True)
    frame["user"] = user_codes.astype(np.int32)
    frame["time"] = frame["time"].astype("datetime64[ms]")
    frame["basket"] = (frame.groupby("user")["time"].rank(method="dense").astype(np.int64) - 1).astype(np.int32)
    last_basket = frame.groupby("user")["basket"].transform("max")
    is_test = (last_basket >= 1) & (frame["basket"] == last_basket)
    is_valid = (last_basket >= 2) & (frame["basket"] == last_basket - 1)
    frame["split"] = np.select([is_test, is_valid], ["test", "valid"], "train")
    frame = frame.sort_values(["user", "basket", "item"], kind="stable").reset_index(drop=True)
    return frame[PURCHASES_SCHEMA.names]


def load_embeddings(
    dataset: Mapping[str, Any],
    items: pd.DataFrame,
    seed: int,
    raw_dir: str | Path | None = None,
    image_embeddings: str | Path | None = None,
) -> np.ndarray:
    """Embeddings in item order: read from the configured/generated/images' .npy, or made up for real items."""
    path = embeddings_file(dataset, raw_dir, image_embeddings)
    if path is None:
        dim = int(dataset.get("synthetic", {}).get("embedding_dim", 2048))
        return synthetic_embeddings(items["artist_id"], dim=dim, seed=seed)
    item_ids = items["item_id"].to_numpy()
    _, matrix = read_embeddings_npy(path, expected_embedding_dim(dataset), item_ids=item_ids)
    check_embeddings_vary(matrix, item_ids, path)
    return matrix


def build_canonical(raw: RawDataset, embeddings_for_items, seed: int | None = None) -> CanonicalData:
    """Canonical frames from a loaded raw data set; ``embeddings_for_items(items)`` returns the matrix."""
    items = canonical_items(raw.items)
    purchases = canonical_purchases(raw.purchases, items)
    embeddings = np.asarray(embeddings_for_items(items), dtype=np.float32)
    stats = dataset_statistics(items, purchases)
    log.info(
        "canonical data: %d items, %d users, %d purchase rows, %d baskets, %d test users, %d validation users",
        len(items),
        stats["users"],
        stats["purchase_rows"],
        stats["baskets"],
        stats["users_with_test_basket"],
        stats["users_with_valid_basket"],
    )
    return CanonicalData(items=items, embeddings=embeddings, purchases=purchases, stats=stats)


def reference_time(dataset: Mapping[str, Any]) -> pd.Timestamp:
    """The configured ``reference_time`` (naive UTC), or now."""
    moment = parse_reference_time(dataset.get("reference_time"))
    return pd.Timestamp(moment) if moment is not None else pd.Timestamp.now(tz="UTC").tz_convert(None)


def prepare_dataset(
    dataset: Mapping[str, Any],
    seed: int,
    raw_dir: str | Path | None = None,
    image_embeddings: str | Path | None = None,
) -> CanonicalData:
    """Load the configured data set (``dataset`` is the config's dataset section) and build its artifacts;
    ``raw_dir`` is the folder of the generated data set (format synthetic), ``image_embeddings``
    the .npy that rule embed_images made of ``dataset.images``."""
    raw = load_ugallery(data_folder(dataset, raw_dir), reference_time(dataset))
    return build_canonical(raw, lambda items: load_embeddings(dataset, items, seed, raw_dir, image_embeddings))


def embeddings_table(embeddings: np.ndarray) -> pa.Table:
    n_items, dim = embeddings.shape
    flat = pa.array(np.ascontiguousarray(embeddings, dtype=np.float32).reshape(-1), type=pa.float32())
    column = pa.FixedSizeListArray.from_arrays(flat, dim)
    return pa.Table.from_arrays([pa.array(np.arange(n_items, dtype=np.int32)), column], schema=embeddings_schema(dim))


def embedding_rows_per_group(embeddings: np.ndarray) -> int:
    """Rows of embeddings.parquet per row group: about ``EMBEDDING_ROW_GROUP_BYTES`` each.

    A reader decodes one row group at a time; one group for a whole big catalogue
    made reading it take several times the matrix's size.
    """
    row_bytes = max(1, embeddings.shape[1]) * 4
    return max(1, EMBEDDING_ROW_GROUP_BYTES // row_bytes)


def write_canonical(data: CanonicalData, items_path, embeddings_path, purchases_path, stats_path) -> None:
    """Write the four artifacts (each atomically)."""
    write_parquet(data.items, items_path, ITEMS_SCHEMA)
    write_parquet(
        embeddings_table(data.embeddings), embeddings_path, row_group_size=embedding_rows_per_group(data.embeddings)
    )
    write_parquet(data.purchases, purchases_path, PURCHASES_SCHEMA)
    write_csv(statistics_frame(data.stats), stats_path)
