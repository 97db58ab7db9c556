"""Snakemake adapter of rule `recommend_batch`: the top k of every user by one recommender.

Logic: curatornet.serving.topk; the run to serve: curatornet.stats.serving_run. A recommender is a
model (its run selected on validation) or a baseline that can write batch recommendations.
"""

from pathlib import Path

import pandas as pd

from curatornet import stats
from curatornet.logs import logged_job
from curatornet.serving.topk import write_top_k


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]) as log:
        inputs, params, recommender = snakemake.input, snakemake.params, snakemake.wildcards.recommender
        if "selection" not in inputs.keys():  # a baseline: nothing was trained
            model = recommender
        else:
            selection = pd.read_csv(inputs.selection, dtype={"model": str, "sampling": str, "l2": str})
            chosen = {"model": recommender, **stats.serving_run(selection, recommender)}
            runs = [dict(run) for run in params.runs]
            model = Path(inputs.models[runs.index(chosen)]).parent
            refits = [dict(run) for run in params.refits]
            refit = {key: chosen[key] for key in ("model", "sampling", "seed")}
            if refit in refits:  # training.refit: the selected run trained again on every purchase before the test
                model = Path(inputs.refits[refits.index(refit)]).parent
            log.info("%s: serving the run selected on validation, %s", recommender, model)
        frame = write_top_k(
            model,
            Path(inputs.catalogue).parent,
            params.k,
            snakemake.output.recommendations,
            index=params.index,
            settings=params.settings,
        )
        log.info("%d users, %d rows", frame["user_id"].nunique(), len(frame))


if __name__ == "__main__":
    main(snakemake)
