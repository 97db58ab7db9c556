"""Snakemake adapter of rule `select_restart`: the restart with the best silhouette.

Logic: curatornet.clusters.
"""

from curatornet.clusters import labels_table, log_selected, read_restart, select_restart
from curatornet.io import write_parquet
from curatornet.logs import logged_job


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]):
        labels, restarts = select_restart([read_restart(path) for path in snakemake.input.restarts])
        log_selected(restarts)
        write_parquet(restarts, snakemake.output.restarts)
        write_parquet(labels_table(labels), snakemake.output.assignment)


if __name__ == "__main__":
    main(snakemake)
