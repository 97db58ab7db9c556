"""Snakemake adapter of rule `gather_evaluation`: every evaluated run in one table each, and the raw summary.

Logic: curatornet.evaluation.evaluate.
"""

from curatornet.evaluation.evaluate import read_result, summarise, write_result
from curatornet.io import write_csv
from curatornet.logs import logged_job


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]) as log:
        inputs, output = snakemake.input, snakemake.output
        result = read_result(list(inputs.per_user), list(inputs.curves), list(inputs.top))
        summary = summarise(result.per_user)
        write_result(result, output.per_user, output.curves, output.top)
        write_csv(summary, output.summary)
        log.info("mean metrics per run, seed and split:\n%s", summary.to_string(index=False))


if __name__ == "__main__":
    main(snakemake)
