"""Snakemake adapter of rule `stats`: the paired tests of section 5.1.

Logic: curatornet.stats.
"""

from curatornet import stats
from curatornet.io import read_frame, write_csv
from curatornet.logs import logged_job


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]) as log:
        per_user = read_frame(snakemake.input.per_user, ["method", "sampling", "l2", "user", "auc"])
        selection = stats.select_runs(snakemake.params.model_dirs)
        write_csv(stats.sampling_ttests(per_user, selection), snakemake.output.sampling)
        write_csv(stats.visrank_tests(per_user), snakemake.output.visrank)
        write_csv(selection, snakemake.output.selection)
        log.info("selected runs:\n%s", selection.to_string(index=False))


if __name__ == "__main__":
    main(snakemake)
