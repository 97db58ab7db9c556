"""Snakemake adapter of rule `train_ablation`: one ablation variant and seed into
results/ablation/models/{ablation}/seed_{seed}/, at the λ selected for the model with guidelines.

Logic: curatornet.models.train.train_model; the λ: curatornet.stats.selected_l2_among.
"""

from pathlib import Path

from curatornet import stats
from curatornet.logs import logged_job
from curatornet.models.environment import tune_allocator
from curatornet.models.settings import TrainSettings
from curatornet.models.train import train_model


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]) as log:
        log.info("allocator tuning: %s", tune_allocator())
        inputs, params = snakemake.input, snakemake.params
        model = params.settings["model"]
        l2 = stats.selected_l2_among([Path(p).parent for p in inputs.selection], model, "guidelines")
        log.info(
            "%s: λ %s, selected for %s with guidelines on the validation baskets",
            snakemake.wildcards.ablation,
            l2,
            model,
        )
        train_model(
            TrainSettings.from_params({**params.settings, "l2": float(l2)}),
            inputs.train,
            inputs.valid,
            inputs.embeddings,
            inputs.catalogue,
            inputs.purchases,
            Path(snakemake.output.model).parent,
            threads=snakemake.threads,
            extra={"ablation": snakemake.wildcards.ablation},
        )


if __name__ == "__main__":
    main(snakemake)
