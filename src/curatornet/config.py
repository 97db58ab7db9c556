"""Configuration checks that JSON schema cannot express (cross-key rules).

The schema (workflow/schemas/config.schema.yaml) already rejected unknown keys
and wrong types and filled the defaults; this adds the rules between keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from curatornet.data.images import RANDOM_WEIGHTS, list_images
from curatornet.errors import InputError

CONFIG_NAME = "config"


def check_config(config: Mapping[str, Any], source: str = CONFIG_NAME) -> None:
    """Raise :class:`InputError` naming the key and value of the first broken rule."""
    dataset = config.get("dataset", {})
    if dataset.get("format") == "ugallery":
        path = dataset.get("path")
        if not path:
            raise InputError(source, "dataset.path", path, "format 'ugallery' needs the folder of the UGallery files")
        if not Path(path).is_dir():
            raise InputError(source, "dataset.path", path, "folder does not exist")
    embeddings = dataset.get("embeddings", "synthetic")
    if embeddings != "synthetic" and not Path(embeddings).is_file():
        raise InputError(source, "dataset.embeddings", embeddings, "embeddings file does not exist")
    images = dataset.get("images")
    if images:
        list_images(images)  # a missing or empty folder, or a stray file, fails before any job starts
        if embeddings != "synthetic":
            raise InputError(
                source, "dataset.embeddings", embeddings, "dataset.images gives the embeddings: leave this 'synthetic'"
            )
        weights = dataset.get("image_weights")
        if weights != RANDOM_WEIGHTS and not (weights and Path(weights).expanduser().is_file()):
            raise InputError(
                source,
                "dataset.image_weights",
                weights,
                "ResNet50 weights file does not exist (README: how to get it once; 'random' only for tests)",
            )
    clusters = config.get("clusters", {})
    if clusters.get("k", 2) < 2:
        raise InputError(source, "clusters.k", clusters.get("k"), "need at least 2 clusters")
    runs = config.get("training", {}).get("runs", {})
    for model, grid in runs.items():
        for sampling, values in grid.items():
            if len(set(values)) != len(values):
                raise InputError(source, f"training.runs.{model}.{sampling}", values, "repeated L2 value")


def sorted_config(value: Any) -> Any:
    """A copy of ``value`` with every mapping's keys sorted, recursively.

    Snakemake compares a rule's params by their printed form, so without this a
    config file whose keys are merely reordered would rerun the whole workflow.
    """
    if isinstance(value, Mapping):
        return {key: sorted_config(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sorted_config(item) for item in value]
    return value
