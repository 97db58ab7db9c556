"""Snakemake adapter of rule `sample_shard`: the triples of one guideline, or of random sampling.

Logic: curatornet.sampling; what a shard reads and its settings: curatornet.sampling.plan.
"""

from curatornet.artifacts import TRIPLETS_SCHEMA
from curatornet.io import read_table, write_parquet
from curatornet.logs import logged_job
from curatornet.sampling import SamplingData, sample_shard


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]) as log:
        inputs, settings = snakemake.input, snakemake.params.sampling
        # The rule names the items table "inventory": Snakemake reserves "items".
        sources = {"items": inputs.inventory}
        sources.update({name: inputs[name] for name in ("purchases", "clusters") if name in inputs.keys()})
        data = SamplingData.from_tables(
            read_table(sources["items"], required=("item", "artist_id")),
            read_table(sources["purchases"], required=("user", "item", "basket", "split"))
            if "purchases" in sources
            else None,
            read_table(sources["clusters"], required=("item", "cluster")) if "clusters" in sources else None,
            sources=sources,
        )
        table, _ = sample_shard(
            data,
            settings["guideline"],
            n_train=settings["train"],
            n_valid=settings["valid"],
            seed=settings["seed"],
            max_profile=settings.get("max_profile", 1),
        )
        write_parquet(table, snakemake.output.triples, TRIPLETS_SCHEMA)
        log.info("%s: %d triples", settings["guideline"], table.num_rows)


if __name__ == "__main__":
    main(snakemake)
