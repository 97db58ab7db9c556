"""Snakemake adapter of rule `gather_evaluation`: every evaluated run in one table each, the refit models
in place of the runs they refit (training.refit), the rows they replaced, and the raw summary.

Logic: curatornet.evaluation.evaluate.
"""

from curatornet.evaluation.evaluate import apply_refit, read_result, summarise, to_table, write_result
from curatornet.io import write_csv, write_parquet
from curatornet.logs import logged_job


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]) as log:
        inputs, output = snakemake.input, snakemake.output
        result = read_result(list(inputs.per_user), list(inputs.curves), list(inputs.top))
        refit = read_result(list(inputs.refit_per_user), list(inputs.refit_curves), list(inputs.refit_top))
        result, before = apply_refit(result, refit)
        summary = summarise(result.per_user)
        write_result(result, output.per_user, output.curves, output.top)
        write_parquet(to_table(before), output.before_refit)
        write_csv(summary, output.summary)
        log.info("%d refit models replace their runs' test rows", len(before.groupby(["method", "sampling", "seed"])))
        log.info("mean metrics per run, seed and split:\n%s", summary.to_string(index=False))


if __name__ == "__main__":
    main(snakemake)
