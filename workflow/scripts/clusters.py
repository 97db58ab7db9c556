"""Snakemake adapter of rule `clusters`: visual clusters and the 2-D map of the items."""

from curatornet.artifacts import CLUSTER_ITEMS_SCHEMA, read_embeddings_matrix
from curatornet.clusters import cluster_matrix
from curatornet.io import write_parquet
from curatornet.logs import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
params = snakemake.params  # noqa: F821
source = snakemake.input.embeddings  # noqa: F821
restarts, items = cluster_matrix(
    read_embeddings_matrix(source),
    k=params.k,
    pca_dim=params.pca_dim,
    restarts=params.restarts,
    seed=params.seed,
    map_method=params.map_method,
    exact_max_items=params.exact_max_items,
    sample_size=params.sample_size,
    threads=snakemake.threads,  # noqa: F821
    source=source,
)
write_parquet(restarts, snakemake.output.restarts)  # noqa: F821
write_parquet(items, snakemake.output.cluster_items, CLUSTER_ITEMS_SCHEMA)  # noqa: F821
