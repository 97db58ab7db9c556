"""Snakemake adapter of rule `evaluate_run`: one trained run on the evaluation cases.

Logic: curatornet.evaluation.evaluate; the run's key comes from the job's wildcards.
"""

from pathlib import Path

from curatornet.artifacts import embeddings_matrix
from curatornet.evaluation.cases import read_cases
from curatornet.evaluation.evaluate import check_embeddings, evaluate_scorer, write_result
from curatornet.io import read_table
from curatornet.logs import logged_job


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]):
        from curatornet.models.registry import load_scorer  # TensorFlow: only once the log is set up

        inputs, wildcards = snakemake.input, snakemake.wildcards
        cases = read_cases(inputs.cases, inputs.inventory)
        embeddings = embeddings_matrix(read_table(inputs.embeddings, ["item", "embedding"]))
        check_embeddings(embeddings, cases, str(inputs.embeddings))
        key = {"method": wildcards.model, "sampling": wildcards.sampling, "l2": wildcards.l2}
        scorer = load_scorer(Path(inputs.model).parent, embeddings)
        result = evaluate_scorer(key, scorer, cases, snakemake.params.ks, snakemake.params.curve_max_k)
        write_result(result, snakemake.output.per_user, snakemake.output.curves, snakemake.output.top)


if __name__ == "__main__":
    main(snakemake)
