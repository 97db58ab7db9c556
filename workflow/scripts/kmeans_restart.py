"""Snakemake adapter of rule `kmeans_restart`: one k-means restart and its silhouette.

Logic: curatornet.clusters.
"""

from threadpoolctl import threadpool_limits

from curatornet.clusters import fit_restart, read_points, scoring_sample, write_restart
from curatornet.logs import logged_job


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]), threadpool_limits(limits=snakemake.threads):
        params = snakemake.params
        points = read_points(snakemake.input.points)
        sample = scoring_sample(len(points), params.exact_max_items, params.sample_size, params.seed)
        result = fit_restart(points, params.k, int(snakemake.wildcards.restart), params.seed, sample)
        write_restart(result, snakemake.output.labels)


if __name__ == "__main__":
    main(snakemake)
