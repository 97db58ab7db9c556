"""Snakemake adapter of rule `train`: one run into results/models/{model}/{sampling}/l2_{l2}/seed_{seed}/.

Logic: curatornet.models.train.
"""

from pathlib import Path

from curatornet.logs import logged_job
from curatornet.models.environment import tune_allocator
from curatornet.models.settings import TrainSettings
from curatornet.models.train import train_model


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]) as log:
        # Keep freed buffers mapped (fewer page faults per step); mallopt works after start-up, unlike MALLOC_*.
        log.info("allocator tuning: %s", tune_allocator())
        inputs = snakemake.input
        train_model(
            TrainSettings.from_params(snakemake.params.settings),
            inputs.train,
            inputs.valid,
            inputs.embeddings,
            inputs.catalogue,
            inputs.purchases,
            Path(snakemake.output.model).parent,
            threads=snakemake.threads,  # set before the model's library starts (TensorFlow: by its trainer builder)
        )


if __name__ == "__main__":
    main(snakemake)
