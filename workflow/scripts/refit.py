"""Snakemake adapter of rule `refit`: the selected run of (model, sampling, seed) trained once more on
every purchase before the test baskets, into results/models/{model}/{sampling}/refit/seed_{seed}/.

Logic: curatornet.models.train.refit_model; the λ: curatornet.stats.selected_l2_among.
"""

from pathlib import Path

from curatornet import stats
from curatornet.logs import logged_job
from curatornet.models.environment import tune_allocator
from curatornet.models.settings import TrainSettings
from curatornet.models.train import refit_model


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]) as log:
        log.info("allocator tuning: %s", tune_allocator())
        inputs, params, wildcards = snakemake.input, snakemake.params, snakemake.wildcards
        # The λ among this model and sampling's runs (every λ and seed), as select_runs chooses it.
        l2 = stats.selected_l2_among([Path(p).parent for p in inputs.selection], wildcards.model, wildcards.sampling)
        selected = Path(inputs.runs[list(params.l2).index(l2)]).parent  # the runs are listed in params.l2's order
        log.info("λ selected on the validation baskets: %s (%s)", l2, selected)
        refit_model(
            TrainSettings.from_params({**params.settings, "l2": float(l2)}),
            selected,
            inputs.train,
            inputs.embeddings,
            inputs.catalogue,
            inputs.purchases,
            Path(snakemake.output.model).parent,
            threads=snakemake.threads,
        )


if __name__ == "__main__":
    main(snakemake)
