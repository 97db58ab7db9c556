"""Snakemake adapter of rule `cluster_map`: the 2-D map of the items.

Logic: curatornet.clusters.
"""

from curatornet.clusters import map_points, map_table, read_points, scoring_sample
from curatornet.io import write_parquet
from curatornet.logs import logged_job


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]):
        params = snakemake.params
        points = read_points(snakemake.input.points)
        sample = scoring_sample(len(points), params.exact_max_items, params.sample_size, params.seed)
        xy = map_points(points, params.map_method, params.seed, snakemake.threads, sample)
        write_parquet(map_table(xy), snakemake.output.map)


if __name__ == "__main__":
    main(snakemake)
