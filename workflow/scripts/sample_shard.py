"""Snakemake adapter of rule `sample_shard`: the triples of one guideline, or of a sampling scheme.

Logic: curatornet.sampling; what a shard reads and its settings: curatornet.sampling.plan.
"""

import json
from dataclasses import asdict

from curatornet.artifacts import TRIPLETS_SCHEMA
from curatornet.io import write_parquet, write_text
from curatornet.logs import logged_job
from curatornet.sampling import SamplingData, sample_shard
from curatornet.sampling.data import read_shard_tables, refit_view
from curatornet.sampling.plan import refit_budget


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]) as log:
        inputs, settings = snakemake.input, snakemake.params.sampling
        sources, tables = read_shard_tables(inputs)
        purchases = tables["purchases"]
        budget = {"train": settings["train"], "valid": settings["valid"]}
        if settings.get("refit"):  # rule sample_refit_shard: every purchase before the test baskets
            purchases, ratio = refit_view(purchases)
            budget = refit_budget(settings, ratio)
            log.info("refit: %.4f times the training purchases, budget %s", ratio, budget)
        data = SamplingData.from_tables(tables["items"], purchases, tables["clusters"], sources=sources)
        triples, report = sample_shard(
            data,
            settings["guideline"],
            n_train=budget["train"],
            n_valid=budget["valid"],
            seed=settings["seed"],
            max_profile=settings.get("max_profile"),  # absent for single-item profiles; None: whole profiles
        )
        write_parquet(triples, snakemake.output.triples, TRIPLETS_SCHEMA)
        write_text(json.dumps(asdict(report), indent=2) + "\n", snakemake.output.report)
        log.info("%s: %d triples of %s requested", settings["guideline"], triples.num_rows, report.requested)


if __name__ == "__main__":
    main(snakemake)
