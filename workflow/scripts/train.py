"""Snakemake adapter of rule `train`: one run into results/models/{model}/{sampling}/l2_{l2}/seed_{seed}/."""

from pathlib import Path

from curatornet.logs import setup_logging
from curatornet.models.environment import configure_tensorflow, tune_allocator
from curatornet.models.settings import TrainSettings
from curatornet.models.train import train_model


def main(snakemake) -> None:
    log = setup_logging(snakemake.log[0])
    # Keep freed buffers mapped (fewer page faults per step); mallopt works after start-up, unlike MALLOC_* variables.
    log.info("allocator tuning: %s", tune_allocator())
    configure_tensorflow(threads=snakemake.threads)
    train_model(
        TrainSettings.from_params(snakemake.params.settings),
        snakemake.input.train,
        snakemake.input.valid,
        snakemake.input.embeddings,
        snakemake.input.catalogue,
        snakemake.input.purchases,
        Path(snakemake.output.model).parent,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
