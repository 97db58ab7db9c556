"""Snakemake adapter of rule `sample_headroom_shard`: a guideline's triples beyond its shard, for the
leave-one-out sets of the ablation; none repeats a triple of the guideline's shard.

Logic: curatornet.sampling (sample_shard with the shard's hashes excluded); settings: curatornet.sampling.plan.
"""

import json
from dataclasses import asdict

from curatornet.artifacts import TRIPLETS_SCHEMA
from curatornet.io import read_table, write_parquet, write_text
from curatornet.logs import logged_job
from curatornet.sampling import SamplingData, sample_shard
from curatornet.sampling.data import read_shard_tables


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]) as log:
        inputs, settings = snakemake.input, snakemake.params.sampling
        sources, tables = read_shard_tables(inputs)
        data = SamplingData.from_tables(tables["items"], tables["purchases"], tables["clusters"], sources=sources)
        triples, report = sample_shard(
            data,
            settings["guideline"],
            n_train=settings["train"],
            n_valid=settings["valid"],
            seed=settings["seed"],
            max_profile=settings.get("max_profile"),
            exclude=read_table(inputs.shard, required=("hash",)).column("hash").to_numpy(),
        )
        write_parquet(triples, snakemake.output.triples, TRIPLETS_SCHEMA)
        write_text(json.dumps(asdict(report), indent=2) + "\n", snakemake.output.report)
        log.info("%s headroom: %d triples of %s requested", settings["guideline"], triples.num_rows, report.requested)


if __name__ == "__main__":
    main(snakemake)
