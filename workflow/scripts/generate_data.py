"""Snakemake adapter of rule `generate_data`: the UGallery-like data set (public-release layout).

Logic: curatornet.data.synthetic.
"""

from curatornet.data.synthetic import generate, parameters_for, write_public_release
from curatornet.logs import logged_job


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]) as log:
        synthetic = snakemake.params.synthetic
        parameters = parameters_for(synthetic["preset"], float(synthetic["scale"]), int(synthetic["embedding_dim"]))
        data = generate(parameters, int(snakemake.params.seed))
        output = snakemake.output
        write_public_release(
            data, inventory_path=output.inventory, purchases_path=output.purchases, embeddings_path=output.embeddings
        )
        log.info("wrote %s, %s and %s", output.inventory, output.purchases, output.embeddings)


if __name__ == "__main__":
    main(snakemake)
