"""Snakemake adapter of rules `evaluate_run`, `evaluate_refit` and `evaluate_ablation`: one trained model
on the evaluation cases of every split it is given.

Logic: curatornet.evaluation.evaluate. The key of a run comes from the job's wildcards; a refit's or an
ablation's from its model.json (its λ is the selection's), with an ablation's set as its sampling. The
model is scored by its NumPy twin, the one serving and the batch recommendations run: no TensorFlow
here, and the AUC reported is that of the model a store serves.
"""

import json
from pathlib import Path

from curatornet.artifacts import read_embeddings_matrix
from curatornet.evaluation.cases import read_split_cases
from curatornet.evaluation.evaluate import check_embeddings, evaluate_scorer, gather_results, run_key, write_result
from curatornet.logs import logged_job
from curatornet.serving.models import load_numpy_scorer


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]):
        inputs, wildcards, params = snakemake.input, snakemake.wildcards, snakemake.params
        embeddings = read_embeddings_matrix(inputs.embeddings)
        model_dir = Path(inputs.model).parent
        if "l2" in wildcards.keys():
            key = {
                "method": wildcards.model,
                "sampling": wildcards.sampling,
                "l2": wildcards.l2,
                "seed": wildcards.seed,
            }
        else:
            meta = json.loads(Path(inputs.model).read_text(encoding="utf-8"))
            key = run_key(meta, wildcards.get("ablation"))
        scorer = load_numpy_scorer(model_dir, embeddings)
        results = []
        for cases in read_split_cases(inputs):
            check_embeddings(embeddings, cases, str(inputs.embeddings))
            results.append(evaluate_scorer(key, scorer, cases, params.ks, params.curve_max_k))
        write_result(gather_results(results), snakemake.output.per_user, snakemake.output.curves, snakemake.output.top)


if __name__ == "__main__":
    main(snakemake)
