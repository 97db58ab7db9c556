"""The canonical Parquet artifacts that stages exchange (their schemas are pinned).

Later stages and external checks read these files, so a change here is a
change of the workflow's public interface.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import pyarrow as pa

#: Sampling guidelines D1-D6 of the paper (section 3.5), in the paper's order.
GUIDELINES: tuple[str, ...] = (
    "d1_basket",
    "d2_next_basket",
    "d3_artist_cluster",
    "d4_profile",
    "d5_single_item",
    "d6_same_artist",
)
#: Shard of plain BPR triples (section 3.3) for the comparison of section 5.1.
RANDOM_SHARD = "random"
SHARDS: tuple[str, ...] = GUIDELINES + (RANDOM_SHARD,)
#: Guidelines VBPR trains on when sampling with guidelines (section 5.1).
VBPR_GUIDELINES: tuple[str, ...] = ("d3_artist_cluster", "d4_profile")

MODELS: tuple[str, ...] = ("curatornet", "vbpr")
SAMPLINGS: tuple[str, ...] = ("guidelines", "random")
BASELINES: tuple[str, ...] = ("visrank", "random", "oracle")

ITEMS_SCHEMA = pa.schema(
    [
        ("item", pa.int32()),
        ("item_id", pa.string()),
        ("artist_id", pa.string()),
        ("upload_time", pa.timestamp("ms")),
        ("one_of_a_kind", pa.bool_()),
    ]
)


def embeddings_schema(dim: int) -> pa.Schema:
    return pa.schema([("item", pa.int32()), ("embedding", pa.list_(pa.float32(), dim))])


#: Values of purchases.parquet's ``split``: ``test`` is the last basket of every
#: user with at least two baskets, ``valid`` the last training basket of every
#: user with at least three (model selection), ``train`` everything else.
PURCHASE_SPLITS: tuple[str, ...] = ("train", "valid", "test")

PURCHASES_SCHEMA = pa.schema(
    [
        ("user", pa.int32()),
        ("user_id", pa.string()),
        ("item", pa.int32()),
        ("time", pa.timestamp("ms")),
        ("basket", pa.int32()),
        ("split", pa.string()),
    ]
)

CLUSTER_ITEMS_SCHEMA = pa.schema(
    [("item", pa.int32()), ("cluster", pa.int32()), ("x", pa.float32()), ("y", pa.float32())]
)

TRIPLETS_SCHEMA = pa.schema(
    [
        ("profile", pa.list_(pa.int32())),
        ("positive", pa.int32()),
        ("negative", pa.int32()),
        ("user", pa.int32()),
        ("split", pa.string()),
        ("hash", pa.uint64()),
    ]
)
MERGED_TRIPLETS_SCHEMA = TRIPLETS_SCHEMA.append(pa.field("guideline", pa.string()))


def l2_label(value: float) -> str:
    """The L2 value as it appears in paths: 0 -> '0', 1e-4 -> '0.0001'."""
    if value == 0:
        return "0"
    return np.format_float_positional(float(value), trim="-")


def embeddings_matrix(table: pa.Table) -> np.ndarray:
    """(n_items, dim) float32 matrix from an embeddings table, rows sorted by item.

    Filled chunk by chunk (a Parquet row group each): the only copy of the
    catalogue besides the table is the result.
    """
    order = np.argsort(table.column("item").to_numpy())
    position = np.empty_like(order)
    position[order] = np.arange(len(order))  # where each table row goes
    column = table.column("embedding")
    dim = column.type.list_size
    matrix = np.empty((len(order), dim), dtype=np.float32)
    start = 0
    for chunk in column.chunks:
        stop = start + len(chunk)
        matrix[position[start:stop]] = chunk.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
        start = stop
    return matrix


def catalogue_fingerprint(item_ids: Iterable[str]) -> str:
    """A short digest of the catalogue: the item ids in item-index order.

    Trained models record it (model.json ``catalogue.fingerprint``) so that a
    model is never used with another catalogue, whose item indexes would mean
    other items.
    """
    digest = hashlib.sha256()
    for item_id in item_ids:
        digest.update(str(item_id).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()[:16]
