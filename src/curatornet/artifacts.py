"""The canonical Parquet artifacts that stages exchange (their schemas are pinned).

Later stages and external checks read these files, so a change here is a
change of the workflow's public interface.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curatornet.errors import InputError

#: Shard of random sampling's triples (section 3.3) for the comparison of section 5.1: a user's
#: training item as positive, the rest of their training items as profile (users with two or
#: more), any item they did not buy as negative. Models that read profiles train on it.
RANDOM_SHARD = "random"
#: Shard of plain BPR triples over every user with a training purchase and no
#: profile: random sampling for models that read no profile (VBPR), so no user is left out.
BPR_SHARD = "bpr"
#: The sampling schemes a run trains with: the guidelines (D1-D6 and any registered ones) or random sampling.
SAMPLINGS: tuple[str, ...] = ("guidelines", "random")

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
#: One k-means restart's labels (clusters/restarts/{restart}.parquet; its scores in the schema metadata)
#: and the selected restart's (clusters/assignment.parquet).
CLUSTER_LABELS_SCHEMA = CLUSTER_ITEMS_SCHEMA.remove(3).remove(2)
#: The 2-D map of the items (clusters/map.parquet).
CLUSTER_MAP_SCHEMA = CLUSTER_ITEMS_SCHEMA.remove(1)

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
    """(n_items, dim) float32 matrix from an embeddings table, rows sorted by item."""
    column = table.column("embedding")
    return matrix_from_chunks(table.column("item").to_numpy(), list(column.chunks), column.type.list_size)


def check_embeddings(
    column_names: Sequence[str], embedding_type: pa.DataType | None, items: np.ndarray | None, source: str | Path
) -> None:
    """An embeddings table's columns, vector type and dense ``item`` 0..N-1 (pass None to skip a part)."""
    for column in ("item", "embedding"):
        if column not in column_names:
            raise InputError(source, column, list(column_names), "required column is missing")
    if embedding_type is not None and not pa.types.is_fixed_size_list(embedding_type):
        raise InputError(source, "embedding", str(embedding_type), "expected a fixed-size list")
    if items is None:
        return
    items = np.sort(items)
    if len(items) == 0:
        raise InputError(source, "item", 0, "no items")
    if items[0] != 0 or items[-1] != len(items) - 1 or np.any(np.diff(items) != 1):
        bad = items[np.flatnonzero(np.diff(items) != 1)[:1]] if len(items) > 1 else items
        raise InputError(source, "item", bad.tolist(), "item indexes must be unique and dense 0..N-1")


def read_embeddings_matrix(path: str | Path) -> np.ndarray:
    """The (n_items, dim) float32 matrix of an embeddings.parquet, rows sorted by item, checked.

    Read one row group at a time into the matrix: reading the whole table first
    peaked at almost three times the matrix's size.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, str(path), "file does not exist")
    try:
        reader = pq.ParquetFile(path)
        schema = reader.schema_arrow
        items = reader.read(columns=["item"]).column("item").to_numpy() if "item" in schema.names else None
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(path, None, str(path), f"not a readable Parquet file ({exc})") from exc
    embedding_type = schema.field("embedding").type if "embedding" in schema.names else None
    check_embeddings(schema.names, embedding_type, items, path)
    row_groups = (
        chunk
        for group in range(reader.num_row_groups)
        for chunk in reader.read_row_group(group, columns=["embedding"]).column("embedding").chunks
    )
    return matrix_from_chunks(items, row_groups, embedding_type.list_size)


def matrix_from_chunks(items: np.ndarray, chunks: Iterable[pa.Array], dim: int) -> np.ndarray:
    """(len(items), dim) float32 matrix of fixed-size-list ``chunks`` (in table order), rows sorted by ``items``.

    Filled chunk by chunk. Chunks from an iterator (a Parquet file's row groups)
    or from a list, which is emptied as it goes, are freed once copied: a caller
    that keeps no other reference to them never holds the catalogue twice.
    """
    order = np.argsort(items)
    position = np.empty_like(order)
    position[order] = np.arange(len(order))  # where each table row goes
    matrix = np.empty((len(order), dim), dtype=np.float32)
    start = 0
    for chunk in _taken(chunks):
        stop = start + len(chunk)
        matrix[position[start:stop]] = chunk.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
        start = stop
        del chunk
        pa.default_memory_pool().release_unused()
    return matrix


def _taken(chunks: Iterable[pa.Array]) -> Iterator[pa.Array]:
    """The chunks one by one; a list gives each up as it is yielded."""
    if isinstance(chunks, list):
        while chunks:
            yield chunks.pop(0)
    else:
        yield from chunks


#: Rows checked at a time by :func:`first_non_finite_row` (no full-size mask).
FINITE_CHECK_ROWS = 8192


def first_non_finite_row(matrix: np.ndarray) -> int | None:
    """Index of the first row holding NaN or inf, or None (checked in chunks of rows)."""
    for lo in range(0, len(matrix), FINITE_CHECK_ROWS):
        bad = ~np.isfinite(matrix[lo : lo + FINITE_CHECK_ROWS]).all(axis=1)
        if bad.any():
            return lo + int(np.flatnonzero(bad)[0])
    return None


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
