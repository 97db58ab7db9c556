"""Snakemake adapter of rule `dedup_triplets`: merge the shards by hash."""

import pandas as pd

from curatornet.artifacts import BPR_SHARD, MERGED_TRIPLETS_SCHEMA, RANDOM_SHARD
from curatornet.io import read_table, write_csv, write_parquet
from curatornet.logs import setup_logging
from curatornet.sampling import merge_shards

setup_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
inputs, outputs = snakemake.input, snakemake.output  # noqa: F821
reports = []
# Guidelines and random are merged one after the other to hold only one set in memory.
guidelines = list(snakemake.params.guidelines)  # noqa: F821 (the order of inputs.guidelines)
for kind, names, paths in (
    ("guidelines", guidelines, list(inputs.guidelines)),
    ("random", [RANDOM_SHARD], [inputs.random]),
    ("bpr", [BPR_SHARD], [inputs.bpr]),
):
    shards = {name: read_table(path) for name, path in zip(names, paths)}
    merged, report = merge_shards(shards, sources=dict(zip(names, paths)))
    del shards
    write_parquet(merged["train"], outputs[f"{kind}_train"], MERGED_TRIPLETS_SCHEMA)
    write_parquet(merged["valid"], outputs[f"{kind}_valid"], MERGED_TRIPLETS_SCHEMA)
    del merged
    reports.append(report)
write_csv(pd.concat(reports, ignore_index=True), outputs.report)
