"""Triplet sets of the guideline ablation: the full set less one guideline, as large as the full set.

Leaving a guideline out would shrink the set by its share, and a smaller set
trains differently; so each leave-one-out set is filled up to the full set's
size by the other guidelines, in proportion to their budgets. The triples come
from the shards the full set was merged from, continued by one *headroom*
shard per guideline (drawn once, with its own seed, repeating none of its
shard's triples: :func:`headroom_budget` says how many): a guideline's stream
is its shard's triples, then its headroom's, and a set takes the first triples
of each stream. The full set is never resampled, every set shares the same
shards, and every set has exactly the full set's number of training and of
validation triples.

The streams are merged in registry order as :func:`curatornet.sampling.dedup.merge_shards`
merges the full set (of equal hashes the first is kept; a validation triple
that repeats a kept training triple is dropped); then each guideline gets a
quota of the target in proportion to its budget (:func:`fill_quotas`: a
guideline short of triples leaves its part to the others) and gives its first
``quota`` surviving triples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from curatornet.artifacts import MERGED_TRIPLETS_SCHEMA
from curatornet.errors import InputError
from curatornet.sampling.arrays import first_occurrence_mask, sorted_contains
from curatornet.sampling.dedup import SPLITS, check_shard
from curatornet.sampling.triples import constant_strings

#: One row per guideline and split of a leave-one-out set.
REPORT_COLUMNS = ("guideline", "split", "shard", "headroom", "distinct", "quota")
#: The prefix of a leave-one-out set's name: ``without_<guideline>``.
WITHOUT = "without_"


def headroom_budget(budgets: Mapping[str, Mapping[str, int]], guideline: str, share: float) -> dict[str, int]:
    """Triples the headroom shard of ``guideline`` draws, per split.

    When the largest other guideline g is left out, ``guideline`` (budget b) must
    give b · B / (B − b_g) triples, B the sum of the budgets; the headroom is what
    that exceeds b by, plus ``share`` of that need for the duplicates the merge drops.
    """
    out = {}
    for split in SPLITS:
        sizes = {name: int(budget[split]) for name, budget in budgets.items()}
        total, own = sum(sizes.values()), sizes[guideline]
        largest_other = max((size for name, size in sizes.items() if name != guideline), default=0)
        rest = total - largest_other
        need = own * total / rest if rest > 0 else own
        out[split] = int(math.ceil(need * (1 + share) - own)) if own else 0
    return out


def fill_quotas(target: int, weights: Sequence[float], available: Sequence[int]) -> np.ndarray:
    """Integer quotas summing to ``target`` (or to all that is available), each at most its
    ``available``, in proportion to ``weights``: what a capped part cannot take goes to the others
    (largest remainders break the rounding)."""
    weights = np.asarray(weights, dtype=np.float64)
    available = np.asarray(available, dtype=np.int64)
    quotas = np.zeros(len(weights), dtype=np.int64)
    remaining = min(int(target), int(available.sum()))
    while remaining > 0:
        open_ = (quotas < available) & (weights > 0)
        if not open_.any():
            open_ = quotas < available  # only unweighted parts are left
            weights = np.where(open_, 1.0, 0.0)
        share = np.where(open_, weights, 0.0)
        exact = share / share.sum() * remaining
        add = np.floor(exact).astype(np.int64)
        leftover = remaining - int(add.sum())
        order = np.argsort(-(exact - add), kind="stable")
        add[order[:leftover]] += 1
        add = np.minimum(add, available - quotas)
        quotas += add
        remaining -= int(add.sum())
    return quotas


def leave_one_out(
    streams: Mapping[str, Sequence[pa.Table]],
    budgets: Mapping[str, Mapping[str, int]],
    targets: Mapping[str, int],
    sources: Mapping[str, str] | None = None,
) -> tuple[dict[str, pa.Table], pd.DataFrame]:
    """One leave-one-out set: ``streams`` maps each kept guideline (in merge order) to its shard and
    its headroom shard; ``targets`` gives the full set's triples per split.

    Returns ({"train": table, "valid": table} in the merged schema, report with one row per guideline
    and split: triples in its shard and headroom, distinct after the merge, and its quota).
    """
    sources = sources or {}
    names = list(streams)
    checked = {
        name: [check_shard(table, sources.get(name, f"{name}.parquet")) for table in tables]
        for name, tables in streams.items()
    }
    merged: dict[str, pa.Table] = {}
    rows = []
    train_hashes = np.empty(0, dtype=np.uint64)
    for split in SPLITS:
        parts, counts = [], []
        for name in names:
            pieces = [t.filter(pc.equal(t.column("split"), split)) for t in checked[name]]
            counts.append([p.num_rows for p in pieces])
            parts.append(pa.concat_tables(pieces) if pieces else None)
        hashes = [p.column("hash").to_numpy() for p in parts]
        everything = np.concatenate(hashes) if hashes else np.empty(0, dtype=np.uint64)
        keep = first_occurrence_mask(everything)
        if split == "valid":
            keep &= ~sorted_contains(train_hashes, everything)
        kept_rows, offset = [], 0
        for h in hashes:
            kept_rows.append(np.flatnonzero(keep[offset : offset + len(h)]))
            offset += len(h)
        available = [len(k) for k in kept_rows]
        weights = [int(budgets[name][split]) for name in names]
        target = int(targets[split])
        if sum(available) < target:
            short = names[int(np.argmin(np.asarray(available) - np.asarray(weights) * target / max(sum(weights), 1)))]
            raise InputError(
                sources.get(f"{short}_headroom", f"headroom/{short}.parquet"),
                "ablation.headroom",
                sum(available),
                f"the guidelines {', '.join(names)} supply only this many distinct {split} triples of the "
                f"{target} the full set has: raise ablation.headroom",
            )
        quotas = fill_quotas(target, weights, available)
        out = []
        for name, part, rows_kept, quota, (shard_n, headroom_n) in zip(names, parts, kept_rows, quotas, counts):
            taken = part.take(pa.array(rows_kept[:quota]))
            out.append(taken.append_column("guideline", constant_strings(name, taken.num_rows)))
            rows.append((name, split, shard_n, headroom_n, len(rows_kept), int(quota)))
        table = pa.concat_tables(out).cast(MERGED_TRIPLETS_SCHEMA) if out else MERGED_TRIPLETS_SCHEMA.empty_table()
        if split == "train":
            train_hashes = np.sort(table.column("hash").to_numpy())
        merged[split] = table
    return merged, pd.DataFrame(rows, columns=list(REPORT_COLUMNS))


def full_set_targets(dedup_report: pd.DataFrame, guidelines: Sequence[str]) -> dict[str, int]:
    """The full guidelines set's triples per split, from the merge's report (``triplets/dedup.csv``)."""
    rows = dedup_report[dedup_report["guideline"].isin(list(guidelines))]
    return {split: int(rows.loc[rows["split"] == split, "after"].sum()) for split in SPLITS}
