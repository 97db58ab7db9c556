"""Snakemake adapter of rule `embed_images`: ResNet50 embeddings of the images in dataset.images.

Logic: curatornet.data.images.
"""

from pathlib import Path

from curatornet.data.embeddings import write_embeddings_npy
from curatornet.data.images import embed_images
from curatornet.data.ugallery import load_inventory
from curatornet.logs import logged_job


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]) as log:
        params, output = snakemake.params, snakemake.output.embeddings
        inventory, inventory_file = load_inventory(Path(snakemake.input.inventory).parent)
        ids, matrix = embed_images(
            params.images,
            inventory["item_id"].tolist(),
            weights=params.weights,
            seed=params.random_seed if params.random_seed is not None else 0,
            threads=snakemake.threads,
            inventory=inventory_file,
        )
        write_embeddings_npy(output, ids, matrix)
        log.info("wrote %d embeddings of dimension %d to %s", len(ids), matrix.shape[1], output)


if __name__ == "__main__":
    main(snakemake)
