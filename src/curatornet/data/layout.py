"""Which files a data set consists of, decided from the config and the folder.

Kept free of heavy imports: the workflow calls it while parsing, to name the
inputs of its rules. Where the generated data set lives (``raw_dir``) is the
workflow's choice and always an argument here; only its file names, those of
the public-release layout, are fixed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curatornet.errors import InputError

#: File names of the generated data set (public-release layout).
RAW_INVENTORY = "ugallery_inventory.csv"
RAW_PURCHASES = "ugallery_purchases.csv"
RAW_EMBEDDINGS = "resnet50_embeddings.npy"
#: ResNet50's pooled features (what rule embed_images makes of the folder dataset.images).
IMAGE_EMBEDDING_DIM = 2048

RESEARCH_SALES = "valid_sales.csv"
RESEARCH_ARTWORKS = "valid_artworks.csv"
PUBLIC_INVENTORIES = ("ugallery_inventory.csv", "inventory.csv")
#: One row per purchased item, or one row per basket with a list of item ids.
PUBLIC_PURCHASES = ("ugallery_purchases.csv", "purchases.csv")


@dataclass(frozen=True)
class Layout:
    """The files of one data set: ``kind`` is 'research' or 'public'."""

    kind: str
    inventory: Path
    purchases: Path


def find_layout(folder: str | Path) -> Layout:
    """The layout of the UGallery files in ``folder`` (research layout preferred)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, None, str(folder), "data folder does not exist")
    if (folder / RESEARCH_SALES).exists() or (folder / RESEARCH_ARTWORKS).exists():
        return Layout("research", folder / RESEARCH_ARTWORKS, folder / RESEARCH_SALES)
    inventory = next((folder / n for n in PUBLIC_INVENTORIES if (folder / n).exists()), None)
    purchases = next((folder / n for n in PUBLIC_PURCHASES if (folder / n).exists()), None)
    if inventory is None and purchases is None:
        expected = [RESEARCH_SALES, RESEARCH_ARTWORKS, *PUBLIC_INVENTORIES, *PUBLIC_PURCHASES]
        raise InputError(
            folder,
            None,
            sorted(p.name for p in folder.iterdir()),
            f"no UGallery files found; expected some of {expected}",
        )
    # A half-present public layout names the missing file, so the error is specific.
    return Layout("public", inventory or folder / PUBLIC_INVENTORIES[0], purchases or folder / PUBLIC_PURCHASES[0])


def generated_folder(raw_dir: str | Path | None) -> Path:
    """``raw_dir``, which the synthetic format needs: the folder of the generated data set."""
    if raw_dir is None:
        raise InputError(None, "raw_dir", None, "format 'synthetic' needs the folder of the generated data set")
    return Path(raw_dir)


def data_folder(dataset: Mapping[str, Any], raw_dir: str | Path | None = None) -> Path:
    """The folder whose files ``prepare_data`` reads: the generator's (``raw_dir``) or the configured one."""
    if dataset.get("format", "synthetic") == "synthetic":
        return generated_folder(raw_dir)
    return Path(dataset["path"])


def embeddings_file(
    dataset: Mapping[str, Any], raw_dir: str | Path | None = None, image_embeddings: str | Path | None = None
) -> Path | None:
    """The .npy to read, or None when embeddings are made up for real items.

    Images (``dataset.images``, embedded into the file ``image_embeddings``) or
    a configured path always win; the generated data set brings its own file.
    """
    if dataset.get("images"):
        if image_embeddings is None:
            raise InputError(
                None, "image_embeddings", None, "dataset.images is set: the path of the images' embeddings is needed"
            )
        return Path(image_embeddings)
    embeddings = dataset.get("embeddings", "synthetic")
    if embeddings != "synthetic":
        return Path(embeddings)
    if dataset.get("format", "synthetic") == "synthetic":
        return generated_folder(raw_dir) / RAW_EMBEDDINGS
    return None


def expected_embedding_dim(dataset: Mapping[str, Any]) -> int | None:
    """The vector length to insist on: the generator's for its own file, ResNet50's for images, else inferred."""
    if dataset.get("images"):
        return IMAGE_EMBEDDING_DIM
    if dataset.get("format", "synthetic") == "synthetic" and dataset.get("embeddings", "synthetic") == "synthetic":
        return int(dataset.get("synthetic", {}).get("embedding_dim", 2048))
    return None


def input_files(
    dataset: Mapping[str, Any], raw_dir: str | Path | None = None, image_embeddings: str | Path | None = None
) -> dict[str, str]:
    """Named input files of ``prepare_data`` for the workflow (inventory, purchases, embeddings)."""
    if dataset.get("format", "synthetic") == "synthetic":
        folder = generated_folder(raw_dir)
        files = {"inventory": str(folder / RAW_INVENTORY), "purchases": str(folder / RAW_PURCHASES)}
    else:
        layout = find_layout(dataset["path"])
        files = {"inventory": str(layout.inventory), "purchases": str(layout.purchases)}
    embeddings = embeddings_file(dataset, raw_dir, image_embeddings)
    if embeddings is not None:
        files["embeddings"] = str(embeddings)
    return files
