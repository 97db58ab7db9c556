"""Snakemake adapter of rule `stats`: Table 2, the paired tests and the user segments.

Logic: curatornet.stats.
"""

import pandas as pd

from curatornet import stats
from curatornet.io import read_frame, write_csv
from curatornet.logs import logged_job

SELECTION_TYPES = {"model": str, "sampling": str, "l2": str}


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]) as log:
        inputs, output = snakemake.input, snakemake.output
        per_user = read_frame(inputs.per_user, ["method", "sampling", "l2", "seed", "split", "user", "auc"])
        before_refit = read_frame(inputs.before_refit, ["method", "sampling", "l2", "seed", "split", "user", "auc"])
        selection = pd.read_csv(inputs.selection, dtype=SELECTION_TYPES)
        averaged = stats.seed_average(per_user)
        test = averaged[averaged["split"] == "test"]
        table2 = stats.table2(per_user, selection, "test", before_refit)
        write_csv(table2, output.table2)
        write_csv(stats.table2(per_user, selection, "valid"), output.table2_valid)
        write_csv(stats.sampling_tests(test, selection, table2), output.sampling)
        write_csv(stats.verdict_tests(test, selection, table2), output.verdicts)
        write_csv(stats.reference_tests(test), output.reference)
        write_csv(stats.segments(averaged, selection), output.segments)
        log.info("Table 2 (test):\n%s", table2.to_string(index=False))


if __name__ == "__main__":
    main(snakemake)
