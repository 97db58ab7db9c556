"""Snakemake adapter: generate the UGallery-like data set into results/raw/ (public-release layout)."""

from curatornet.data.synthetic import generate, parameters_for, write_public_release
from curatornet.logs import setup_logging

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
log = setup_logging(snakemake.log[0])
synthetic = snakemake.params.synthetic
parameters = parameters_for(synthetic["preset"], float(synthetic["scale"]), int(synthetic["embedding_dim"]))
data = generate(parameters, int(snakemake.params.seed))
write_public_release(
    data,
    inventory_path=snakemake.output.inventory,
    purchases_path=snakemake.output.purchases,
    embeddings_path=snakemake.output.embeddings,
)
log.info("wrote %s, %s and %s", snakemake.output.inventory, snakemake.output.purchases, snakemake.output.embeddings)
