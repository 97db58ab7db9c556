"""Snakemake adapter of rule `select_runs`: λ chosen on the validation baskets, every run's stopping.

Logic: curatornet.stats (read_runs, select_runs).
"""

from pathlib import Path

from curatornet import stats
from curatornet.io import write_csv
from curatornet.logs import logged_job


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]) as log:
        runs = stats.read_runs([Path(path).parent for path in snakemake.input.models])
        selection = stats.select_runs(runs)
        write_csv(selection, snakemake.output.selection)
        write_csv(runs, snakemake.output.runs)
        log.info("runs:\n%s", runs.to_string(index=False))
        log.info("selection:\n%s", selection.to_string(index=False))


if __name__ == "__main__":
    main(snakemake)
