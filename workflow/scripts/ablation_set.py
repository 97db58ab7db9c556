"""Snakemake adapter of rule `ablation_set`: the guidelines set less one guideline, as large as the full set.

Logic: curatornet.sampling.ablation.
"""

import pandas as pd

from curatornet.artifacts import MERGED_TRIPLETS_SCHEMA
from curatornet.io import read_table, write_csv, write_parquet
from curatornet.logs import logged_job
from curatornet.sampling.ablation import full_set_targets, leave_one_out


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]) as log:
        inputs, params = snakemake.input, snakemake.params
        kept = list(params.guidelines)  # the order of inputs.shards and inputs.headroom
        targets = full_set_targets(pd.read_csv(inputs.dedup, dtype={"guideline": str}), list(params.full))
        streams = {
            name: [read_table(shard), read_table(headroom)]
            for name, shard, headroom in zip(kept, inputs.shards, inputs.headroom)
        }
        sources = dict(zip(kept, inputs.shards)) | {f"{name}_headroom": h for name, h in zip(kept, inputs.headroom)}
        merged, report = leave_one_out(streams, dict(params.budgets), targets, sources)
        write_parquet(merged["train"], snakemake.output.train, MERGED_TRIPLETS_SCHEMA)
        write_parquet(merged["valid"], snakemake.output.valid, MERGED_TRIPLETS_SCHEMA)
        write_csv(report, snakemake.output.report)
        log.info("the full set's sizes %s, filled by %s:\n%s", targets, ", ".join(kept), report.to_string(index=False))


if __name__ == "__main__":
    main(snakemake)
