"""Snakemake adapter of rule `clusters`: visual clusters and the 2-D map of the items.

Logic: curatornet.clusters.
"""

from curatornet.artifacts import CLUSTER_ITEMS_SCHEMA
from curatornet.clusters import cluster_items
from curatornet.io import read_table, write_parquet
from curatornet.logs import logged_job


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]):
        params, source = snakemake.params, snakemake.input.embeddings
        restarts, items = cluster_items(
            read_table(source, required=("item", "embedding")),
            k=params.k,
            pca_dim=params.pca_dim,
            restarts=params.restarts,
            seed=params.seed,
            map_method=params.map_method,
            threads=snakemake.threads,
            source=source,
        )
        write_parquet(restarts, snakemake.output.restarts)
        write_parquet(items, snakemake.output.cluster_items, CLUSTER_ITEMS_SCHEMA)


if __name__ == "__main__":
    main(snakemake)
