"""The configuration: its schema's defaults, and the checks JSON schema cannot express.

The schema (workflow/schemas/config.schema.yaml) rejects unknown keys and
wrong types and holds every default; :func:`check_config` adds the rules
between keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from curatornet.errors import InputError

CONFIG_NAME = "config"
#: The config schema: every key with its description and default, the only source of defaults.
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


@cache
def load_schema(path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """The config schema as a dict (read once)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, str(path), "config schema not found (run from a checkout of the workflow)")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def schema_defaults(node: Mapping[str, Any] | None = None) -> Any:
    """The default of every key of the schema, nested like a config.

    Objects are filled from their properties' defaults, as Snakemake's
    validation does; keys without a default (budgets, run grids) are left out.
    """
    node = load_schema() if node is None else node
    if node.get("type") == "object" or "properties" in node:
        out = dict(node.get("default") or {})
        for name, spec in node.get("properties", {}).items():
            if "default" in spec or "properties" in spec:
                out[name] = schema_defaults(spec)
        return out
    return node.get("default")


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
