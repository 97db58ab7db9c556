"""Snakemake adapter of rule `pca_points`: the standardised PCA points of the catalogue.

Logic: curatornet.clusters.
"""

from curatornet.artifacts import read_embeddings_matrix
from curatornet.clusters import project_checked, write_points
from curatornet.logs import logged_job


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]):
        params, source = snakemake.params, snakemake.input.embeddings
        points = project_checked(read_embeddings_matrix(source), params.pca_dim, params.seed, snakemake.threads, source)
        write_points(points, snakemake.output.points)


if __name__ == "__main__":
    main(snakemake)
