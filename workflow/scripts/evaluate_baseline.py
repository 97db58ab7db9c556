"""Snakemake adapter of rule `evaluate_baseline`: one baseline (VisRank, Random, Oracle, MostPopular, …) on the
evaluation cases.

Logic: curatornet.evaluation.evaluate; which baseline comes from the job's wildcards, what it is from its record.
"""

from curatornet.artifacts import read_embeddings_matrix
from curatornet.evaluation.cases import read_split_cases
from curatornet.evaluation.evaluate import (
    baseline_scorer,
    check_embeddings,
    evaluate_scorer,
    gather_results,
    write_result,
)
from curatornet.evaluation.protocol import PURCHASE_COLUMNS
from curatornet.io import read_frame
from curatornet.logs import logged_job


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]):
        inputs, baseline, settings = snakemake.input, snakemake.wildcards.baseline, snakemake.params.settings
        embeddings = read_embeddings_matrix(inputs.embeddings)
        purchases = read_frame(inputs.purchases, PURCHASE_COLUMNS) if "purchases" in inputs.keys() else None
        scorer = baseline_scorer(baseline, embeddings, settings, purchases)
        results = []
        for cases in read_split_cases(inputs):
            check_embeddings(embeddings, cases, str(inputs.embeddings))
            results.append(
                evaluate_scorer({"method": baseline}, scorer, cases, settings["ks"], settings["curve_max_k"])
            )
        write_result(gather_results(results), snakemake.output.per_user, snakemake.output.curves, snakemake.output.top)


if __name__ == "__main__":
    main(snakemake)
