"""Snakemake adapter of rule `dedup_triplets`: merge the shards by hash.

Logic: curatornet.sampling.dedup.
"""

import pandas as pd

from curatornet.artifacts import BPR_SHARD, MERGED_TRIPLETS_SCHEMA, RANDOM_SHARD
from curatornet.io import read_table, write_csv, write_parquet
from curatornet.logs import logged_job
from curatornet.sampling import merge_shards


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]) as log:
        inputs, outputs = snakemake.input, snakemake.output
        reports = []
        # The sets are merged one after the other to hold only one in memory.
        guidelines = list(snakemake.params.guidelines)  # the order of inputs.guidelines
        for kind, names, paths in (
            ("guidelines", guidelines, list(inputs.guidelines)),
            ("random", [RANDOM_SHARD], list(inputs.random)),
            ("bpr", [BPR_SHARD], list(inputs.bpr)),
        ):
            shards = {name: read_table(path) for name, path in zip(names, paths)}
            merged, report = merge_shards(shards, sources=dict(zip(names, paths)))
            del shards
            write_parquet(merged["train"], outputs[f"{kind}_train"], MERGED_TRIPLETS_SCHEMA)
            write_parquet(merged["valid"], outputs[f"{kind}_valid"], MERGED_TRIPLETS_SCHEMA)
            del merged
            reports.append(report)
        report = pd.concat(reports, ignore_index=True)
        write_csv(report, outputs.report)
        log.info("deduplicated:\n%s", report.to_string(index=False))


if __name__ == "__main__":
    main(snakemake)
