"""Benchmark: sample, hash, deduplicate and write the paper's triple budget.

Sampling, hashing, deduplicating and writing 10 million training triples over
D1-D6 plus 300,000 validation triples (config/paper.yaml) should take at most
60 s of wall time on two cores with a peak memory under 4 GB.

    .venv/bin/python benchmarks/bench_sampling.py [--scale 1.0] [--train 10000000] [--valid 300000]

Input: the default generated data set (``curatornet.data``) when that package
provides a generator; otherwise a FALLBACK of random arrays of UGallery size
(clearly reported in the output). The visual clusters are random labels: the
samplers only read the labels, so their quality does not change the timing.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from curatornet import parts
from curatornet.io import read_table, write_csv, write_parquet
from curatornet.sampling import SamplingData, merge_shards, sample_shard, shard_seed


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def generated_tables(scale: float, seed: int) -> tuple[pa.Table, pa.Table, str] | None:
    """items and purchases of the default generated data set (None if curatornet.data is missing)."""
    try:
        from curatornet.data.prepare import canonical_items, canonical_purchases
        from curatornet.data.synthetic import generate, parameters_for
    except ImportError:
        return None
    dataset = generate(parameters_for("default", scale, embedding_dim=8), seed)
    items = canonical_items(dataset.items)
    purchases = canonical_purchases(dataset.purchases, items)
    return _table(items), _table(purchases), f"curatornet.data.synthetic default preset, scale {scale}"


def _table(data) -> pa.Table:
    return data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)


def fallback_tables(scale: float, seed: int) -> tuple[pa.Table, pa.Table, str]:
    """FALLBACK: random data of UGallery's size and shape (heavy-tailed purchases per user)."""
    rng = np.random.default_rng(seed)
    n_items, n_users, n_artists = int(7742 * scale), int(2919 * scale), int(735 * scale)
    artist = rng.zipf(1.6, size=n_items) % n_artists
    items = pd.DataFrame({"item": np.arange(n_items, dtype=np.int32), "artist_id": artist.astype(str)})
    # Purchases per user: median 1, 90th percentile ~4, a few heavy buyers (max a few hundred).
    per_user = np.minimum(rng.zipf(1.9, size=n_users), 300)
    user = np.repeat(np.arange(n_users), per_user)
    # Baskets: consecutive purchases of a user share a basket with probability 0.3.
    new_basket = rng.random(len(user)) > 0.3
    first = np.ones(len(user), dtype=bool)
    first[1:] = user[1:] != user[:-1]
    new_basket |= first
    run = np.cumsum(new_basket)
    basket = run - run[np.flatnonzero(first)][np.cumsum(first) - 1]
    last = np.zeros(len(user), dtype=np.int64)
    np.maximum.at(last, user, basket)
    n_baskets = last[user] + 1
    split = np.where((n_baskets >= 2) & (basket == last[user]), "test", "train")
    purchases = pd.DataFrame(
        {
            "user": user.astype(np.int32),
            "item": rng.integers(0, n_items, size=len(user)).astype(np.int32),
            "basket": basket.astype(np.int32),
            "split": split,
        }
    )
    return pa.Table.from_pandas(items), pa.Table.from_pandas(purchases), "FALLBACK random arrays of UGallery size"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--train", type=int, default=10_000_000, help="training triples over D1-D6")
    parser.add_argument("--valid", type=int, default=300_000, help="validation triples over D1-D6")
    parser.add_argument("--max-profile", type=int, default=64)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for the Parquet files (default: a temporary one)"
    )
    args = parser.parse_args(argv)

    timings: dict[str, float] = {}
    total_start = time.perf_counter()
    start = time.perf_counter()
    tables = generated_tables(args.scale, args.seed) or fallback_tables(args.scale, args.seed)
    items, purchases, origin = tables
    n_items = items.num_rows
    clusters = pa.table(
        {
            "item": np.arange(n_items, dtype=np.int32),
            "cluster": np.random.default_rng(args.seed).integers(0, args.clusters, n_items).astype(np.int32),
        }
    )
    data = SamplingData.from_tables(items, purchases, clusters)
    timings["prepare data (not counted)"] = time.perf_counter() - start
    print(f"input: {origin}: {n_items} items, {data.n_users} users, {len(data.user_items)} training (user, item) pairs")

    per_train = [args.train // 6 + (1 if i < args.train % 6 else 0) for i in range(6)]
    per_valid = [args.valid // 6 + (1 if i < args.valid % 6 else 0) for i in range(6)]
    counted_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        shards = {}
        sample_time = write_time = 0.0
        for g, n_train, n_valid in zip(parts.guideline_names(), per_train, per_valid):
            t0 = time.perf_counter()
            table, report = sample_shard(data, g, n_train, n_valid, shard_seed(args.seed, g), args.max_profile)
            t1 = time.perf_counter()
            write_parquet(table, out / "shards" / f"{g}.parquet")
            t2 = time.perf_counter()
            sample_time += t1 - t0
            write_time += t2 - t1
            shards[g] = table.num_rows
            mean_len = np.diff(table.column("profile").combine_chunks().offsets.to_numpy()).mean()
            print(
                f"  {g:18s} sample+hash {t1 - t0:6.2f} s  write {t2 - t1:5.2f} s  "
                f"train {report.produced['train']:>9,d} valid {report.produced['valid']:>7,d}  "
                f"mean profile {mean_len:5.1f}  cases {report.cases:,d}"
            )
        timings["sample + hash (6 shards)"] = sample_time
        timings["write shards"] = write_time
        del table
        # As in the workflow, the merge reads the shards back from their files.
        t0 = time.perf_counter()
        shards = {g: read_table(out / "shards" / f"{g}.parquet") for g in parts.guideline_names()}
        timings["read shards"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        merged, report = merge_shards(shards)
        timings["dedup"] = time.perf_counter() - t0
        del shards
        t0 = time.perf_counter()
        for split, table in merged.items():
            write_parquet(table, out / "guidelines" / f"{split}.parquet")
        write_csv(report, out / "dedup.csv")
        timings["write merged"] = time.perf_counter() - t0
    total = time.perf_counter() - counted_start
    for phase, seconds in timings.items():
        print(f"{phase:28s} {seconds:7.2f} s")
    print(f"{'total (sample..write)':28s} {total:7.2f} s")
    print(f"{'wall incl. data prep':28s} {time.perf_counter() - total_start:7.2f} s")
    print(f"peak RSS {peak_rss_mb():,.0f} MB")
    dropped = int(report["dropped"].sum())
    print(f"merged: train {merged['train'].num_rows:,d}, valid {merged['valid'].num_rows:,d}; dropped {dropped:,d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
