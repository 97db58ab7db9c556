"""Snakemake adapter of rule `train`: one model into results/models/{model}/{sampling}/l2_{l2}/.

Logic: curatornet.models.training.
"""

from pathlib import Path

from curatornet.logs import logged_job
from curatornet.models.training import TrainSettings, configure_tensorflow, train_model, tune_allocator


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]) as log:
        # Keep freed buffers mapped (fewer page faults per step); mallopt works after start-up, unlike MALLOC_*.
        log.info("allocator tuning: %s", tune_allocator())
        configure_tensorflow(threads=snakemake.threads)
        settings = dict(snakemake.params.settings)
        for key in ("tower_units", "head_units"):
            settings[key] = tuple(settings[key])
        train_model(
            TrainSettings(**settings),
            snakemake.input.train,
            snakemake.input.valid,
            snakemake.input.embeddings,
            Path(snakemake.output.model).parent,
        )


if __name__ == "__main__":
    main(snakemake)
