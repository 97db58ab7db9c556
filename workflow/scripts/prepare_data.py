"""Snakemake adapter: build results/data/{items,embeddings,purchases}.parquet and stats.csv."""

from pathlib import Path

from curatornet.data.prepare import prepare_dataset, write_canonical
from curatornet.logs import setup_logging

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
log = setup_logging(snakemake.log[0])
# The generator's folder is where the synthetic inputs live (their parent folder).
raw_dir = Path(snakemake.input.inventory).parent
data = prepare_dataset(snakemake.params.dataset, int(snakemake.params.seed), raw_dir=raw_dir)
output = snakemake.output
write_canonical(data, output.item_table, output.embedding_table, output.purchase_table, output.stats)
log.info("wrote the canonical data artifacts to %s", Path(output.item_table).parent)
