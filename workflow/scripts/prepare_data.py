"""Snakemake adapter of rule `prepare_data`: the canonical items, embeddings, purchases and statistics.

Logic: curatornet.data.prepare.
"""

from curatornet.data.prepare import prepare_dataset, write_canonical
from curatornet.logs import logged_job


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]) as log:
        params, output = snakemake.params, snakemake.output
        data = prepare_dataset(
            params.dataset, int(params.seed), raw_dir=params.raw_dir, image_embeddings=params.image_embeddings
        )
        write_canonical(data, output.item_table, output.embedding_table, output.purchase_table, output.stats)
        log.info("wrote %s, %s, %s and %s", *output)


if __name__ == "__main__":
    main(snakemake)
