"""Merging shards: one copy of every triple (by hash), training and validation disjoint.

Shards are merged in the order given (D1..D6); of triples with equal hashes
the first is kept, so an earlier guideline wins. A validation triple whose
hash is among the kept training triples is dropped (paper footnote 3).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from curatornet.artifacts import MERGED_TRIPLETS_SCHEMA, TRIPLETS_SCHEMA
from curatornet.errors import InputError
from curatornet.sampling.arrays import first_occurrence_mask, sorted_contains
from curatornet.sampling.triples import constant_strings

log = logging.getLogger(__name__)

SPLITS = ("train", "valid")
#: One row per shard and split; ``users``: distinct known users (user >= 0) among the kept triples.
REPORT_COLUMNS = ("guideline", "split", "before", "after", "dropped", "users")


def check_shard(table: pa.Table, source: str | Path) -> pa.Table:
    """The shard cast to the shard schema, or InputError naming what is wrong."""
    for column in TRIPLETS_SCHEMA.names:
        if column not in table.column_names:
            raise InputError(source, column, table.column_names, "required column is missing")
    split = table.column("split")
    bad = pc.invert(pc.is_in(split, value_set=pa.array(SPLITS)))
    if split.null_count or pc.any(bad).as_py():
        value = None if split.null_count else pc.filter(split, bad)[0].as_py()
        raise InputError(source, "split", value, "split must be 'train' or 'valid'")
    try:
        return table.select(TRIPLETS_SCHEMA.names).cast(TRIPLETS_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(source, None, str(table.schema), f"columns do not match the shard schema ({exc})") from exc


def merge_shards(
    shards: Mapping[str, pa.Table], sources: Mapping[str, str | Path] | None = None
) -> tuple[dict[str, pa.Table], pd.DataFrame]:
    """Merge shards (in the mapping's order) into deduplicated train and valid tables.

    Returns ({"train": table, "valid": table}, report) where each table has the
    shard columns plus ``guideline`` and the report has one row per shard and
    split: triples before, after and dropped.
    """
    sources = sources or {}
    names = list(shards)
    checked = {g: check_shard(t, sources.get(g, f"{g}.parquet")) for g, t in shards.items()}
    # Row selections per shard and split, then one keep-mask over the concatenation.
    pieces: dict[str, list[tuple[str, pa.Table]]] = {s: [] for s in SPLITS}
    for g in names:
        table = checked[g]
        is_train = pc.equal(table.column("split"), "train").to_numpy(zero_copy_only=False)
        pieces["train"].append((g, _rows(table, is_train)))
        pieces["valid"].append((g, _rows(table, ~is_train)))
    merged: dict[str, pa.Table] = {}
    rows = []
    train_hashes = np.empty(0, dtype=np.uint64)
    for s in SPLITS:
        hashes = [t.column("hash").to_numpy() for _, t in pieces[s]]
        all_hashes = np.concatenate(hashes) if hashes else np.empty(0, dtype=np.uint64)
        keep = first_occurrence_mask(all_hashes)
        if s == "valid":
            keep &= ~sorted_contains(train_hashes, all_hashes)
        else:
            train_hashes = np.sort(all_hashes[keep])
        out = []
        offset = 0
        for (g, t), h in zip(pieces[s], hashes):
            mask = keep[offset : offset + len(h)]
            offset += len(h)
            kept = _rows(t, mask)
            out.append(kept.append_column("guideline", constant_strings(g, kept.num_rows)))
            users = pc.count_distinct(pc.filter(kept.column("user"), pc.greater_equal(kept.column("user"), 0)))
            rows.append((g, s, len(h), kept.num_rows, len(h) - kept.num_rows, users.as_py()))
            dropped = len(h) - kept.num_rows
            log.info("%s %s: %d triples, %d kept, %d duplicates dropped", g, s, len(h), kept.num_rows, dropped)
        merged[s] = pa.concat_tables(out).cast(MERGED_TRIPLETS_SCHEMA) if out else MERGED_TRIPLETS_SCHEMA.empty_table()
    rows.sort(key=lambda row: (names.index(row[0]), SPLITS.index(row[1])))
    return merged, pd.DataFrame(rows, columns=list(REPORT_COLUMNS))


def _rows(table: pa.Table, mask: np.ndarray) -> pa.Table:
    """The rows where ``mask`` is true: a zero-copy slice when they are one run (shards put train first)."""
    where = np.flatnonzero(mask)
    if len(where) == 0:
        return table.slice(0, 0)
    if where[-1] - where[0] + 1 == len(where):
        return table.slice(int(where[0]), len(where))
    return table.filter(pa.array(mask))
