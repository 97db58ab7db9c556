"""Snakemake adapter of rule `train`: one model into results/models/{model}/{sampling}/l2_{l2}/."""

from pathlib import Path

from curatornet.logs import setup_logging
from curatornet.models.training import TrainSettings, configure_tensorflow, train_model, tune_allocator

log = setup_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
# Keep freed buffers mapped (fewer page faults per step); mallopt works after start-up, unlike MALLOC_* variables.
log.info("allocator tuning: %s", tune_allocator())
configure_tensorflow(threads=snakemake.threads)  # noqa: F821
settings = dict(snakemake.params.settings)  # noqa: F821
for key in ("tower_units", "head_units"):
    settings[key] = tuple(settings[key])
train_model(
    TrainSettings(**settings),
    snakemake.input.train,  # noqa: F821
    snakemake.input.valid,  # noqa: F821
    snakemake.input.embeddings,  # noqa: F821
    Path(snakemake.output.model).parent,  # noqa: F821
)
