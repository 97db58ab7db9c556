"""Snakemake adapter of rule `clusters`: visual clusters and the 2-D map of the items.

Logic: curatornet.clusters.
"""

from curatornet.artifacts import CLUSTER_ITEMS_SCHEMA, read_embeddings_matrix
from curatornet.clusters import cluster_matrix
from curatornet.io import write_parquet
from curatornet.logs import logged_job


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]):
        params, source = snakemake.params, snakemake.input.embeddings
        restarts, items = cluster_matrix(
            read_embeddings_matrix(source),
            k=params.k,
            pca_dim=params.pca_dim,
            restarts=params.restarts,
            seed=params.seed,
            map_method=params.map_method,
            exact_max_items=params.exact_max_items,
            sample_size=params.sample_size,
            threads=snakemake.threads,
            source=source,
        )
        write_parquet(restarts, snakemake.output.restarts)
        write_parquet(items, snakemake.output.cluster_items, CLUSTER_ITEMS_SCHEMA)


if __name__ == "__main__":
    main(snakemake)
