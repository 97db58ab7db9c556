"""Snakemake adapter of rule `clusters`: each item's cluster and map position in one table.

Logic: curatornet.clusters.
"""

from curatornet.clusters import join_items
from curatornet.io import write_parquet
from curatornet.logs import logged_job


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]):
        inputs = snakemake.input
        write_parquet(join_items(inputs.assignment, inputs.map), snakemake.output.cluster_items)


if __name__ == "__main__":
    main(snakemake)
