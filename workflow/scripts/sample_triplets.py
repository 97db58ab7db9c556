"""Snakemake adapter of the rules `sample_<shard>`: one shard of triples."""

from curatornet.artifacts import TRIPLETS_SCHEMA
from curatornet.io import read_table, write_parquet
from curatornet.logs import setup_logging
from curatornet.sampling import SamplingData, sample_shard

setup_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
inputs = snakemake.input  # noqa: F821
params = snakemake.params  # noqa: F821
sources = {"items": inputs.inventory}  # the rule calls it "inventory": "items" is reserved by Snakemake
sources.update({name: inputs[name] for name in ("purchases", "clusters") if name in inputs.keys()})
data = SamplingData.from_tables(
    read_table(sources["items"], required=("item", "artist_id")),
    read_table(sources["purchases"], required=("user", "item", "basket", "split")) if "purchases" in sources else None,
    read_table(sources["clusters"], required=("item", "cluster")) if "clusters" in sources else None,
    sources=sources,
)
table, _ = sample_shard(
    data,
    params.guideline,
    n_train=params.train,
    n_valid=params.valid,
    seed=params.seed,
    max_profile=params.get("max_profile", 1),
)
write_parquet(table, snakemake.output[0], TRIPLETS_SCHEMA)  # noqa: F821
