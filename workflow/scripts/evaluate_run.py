"""Snakemake adapter of rule `evaluate_run`: one trained run on the evaluation cases of every split.

Logic: curatornet.evaluation.evaluate; the run's key comes from the job's wildcards.
"""

from pathlib import Path

from curatornet.artifacts import read_embeddings_matrix
from curatornet.evaluation.cases import read_split_cases
from curatornet.evaluation.evaluate import check_embeddings, evaluate_scorer, gather_results, write_result
from curatornet.logs import logged_job


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]):
        from curatornet.models.registry import load_scorer  # TensorFlow: only once the log is set up

        inputs, wildcards, params = snakemake.input, snakemake.wildcards, snakemake.params
        embeddings = read_embeddings_matrix(inputs.embeddings)
        key = {"method": wildcards.model, "sampling": wildcards.sampling, "l2": wildcards.l2, "seed": wildcards.seed}
        scorer = load_scorer(Path(inputs.model).parent, embeddings)
        results = []
        for cases in read_split_cases(inputs):
            check_embeddings(embeddings, cases, str(inputs.embeddings))
            results.append(evaluate_scorer(key, scorer, cases, params.ks, params.curve_max_k))
        write_result(gather_results(results), snakemake.output.per_user, snakemake.output.curves, snakemake.output.top)


if __name__ == "__main__":
    main(snakemake)
