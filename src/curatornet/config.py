"""Configuration checks that JSON schema cannot express (cross-key rules).

The schema (workflow/schemas/config.schema.yaml) already rejected unknown keys
and wrong types and filled the defaults; this adds the rules between keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    parse_reference_time(dataset.get("reference_time"), source)
    embeddings = dataset.get("embeddings", "synthetic")
    if embeddings != "synthetic" and not Path(embeddings).is_file():
        raise InputError(source, "dataset.embeddings", embeddings, "embeddings file does not exist")
    clusters = config.get("clusters", {})
    if clusters.get("k", 2) < 2:
        raise InputError(source, "clusters.k", clusters.get("k"), "need at least 2 clusters")
    runs = config.get("training", {}).get("runs", {})
    for model, grid in runs.items():
        for sampling, values in grid.items():
            if len(set(values)) != len(values):
                raise InputError(source, f"training.runs.{model}.{sampling}", values, "repeated L2 value")


def parse_reference_time(value: Any, source: str = CONFIG_NAME) -> datetime | None:
    """``dataset.reference_time`` as a naive UTC datetime (None stays None: "now", decided by the caller)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise InputError(source, "dataset.reference_time", value, "not an ISO 8601 date-time") from exc
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


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
