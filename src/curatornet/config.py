"""Checking a configuration before anything runs.

:func:`validate_config` is what the workflow calls: the JSON schema
(workflow/schemas/config.schema.yaml) first, reported as the one failing key
rather than a dump of the schema; then the defaults; then the rules between
keys that a schema cannot express (:func:`check_config`). The schema is also
the only source of defaults (:func:`schema_defaults`) for code run outside the
workflow, such as the command line.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, MutableMapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from curatornet.data.images import RANDOM_WEIGHTS, list_images
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


#: Keys that left the scientific config for the profiles (site resources).
MOVED_KEYS = {
    "training.threads": "set-threads: {train: N} in profiles/<profile>/config.yaml",
    "training.gpu": "set-resources: {train: {gpu: N}} in profiles/slurm/config.yaml",
    "training.mem_mb": "set-resources: {train: {mem_mb: N}} in profiles/<profile>/config.yaml",
    "training.runtime": "set-resources: {train: {runtime: N}} in profiles/<profile>/config.yaml",
}
#: Keys the schedule no longer has: checks count Adam steps, not passes over the triples.
REPLACED_KEYS = {
    "training.max_epochs": "replaced by training.max_steps (Adam steps; the log says how many make a pass)",
    "training.epoch_triples": "replaced by training.check_every_steps (Adam steps between validation checks)",
}


def validate_config(config: MutableMapping[str, Any], schema_path: str | Path, source: str = CONFIG_NAME) -> None:
    """Check ``config`` against the schema, fill in the defaults, check the cross-key
    rules and sort every mapping's keys, all in place.

    Raises :class:`InputError` naming the first failing key (its dotted path),
    its value and what is allowed there; ``source`` names the config files.
    """
    import jsonschema
    import yaml
    from snakemake.utils import validate

    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(config))
    if error is not None:
        raise schema_error(error, source)
    validate(config, str(schema_path), set_default=True)
    check_config(config, source)
    # Reordering keys in a config file must not rerun anything (params compare as text).
    ordered = sorted_config(dict(config))
    config.clear()
    config.update(ordered)


def schema_error(error, source: str = CONFIG_NAME) -> InputError:
    """One line for a jsonschema ``ValidationError``: the key's dotted path, its value, what is allowed."""
    key = key_path(error.absolute_path)
    rule, allowed = error.validator, error.validator_value
    if rule == "additionalProperties":
        known = error.schema.get("properties", {})
        unknown = sorted(set(error.instance) - set(known))
        key = ".".join(part for part in (key, unknown[0]) if part)
        moved = MOVED_KEYS.get(key)
        if moved:
            return InputError(source, key, error.instance[unknown[0]], f"site resource, not config: use {moved}")
        if key in REPLACED_KEYS:
            return InputError(source, key, error.instance[unknown[0]], REPLACED_KEYS[key])
        return InputError(source, key, error.instance[unknown[0]], f"unknown key; allowed here: {', '.join(known)}")
    if rule == "required":
        missing = [name for name in allowed if name not in error.instance]
        key = ".".join(part for part in (key, missing[0]) if part)
        return InputError(source, key, error.instance, "required key is missing")
    if rule == "enum":
        problem = f"must be one of: {', '.join(map(str, allowed))}"
    elif rule == "type":
        types = allowed if isinstance(allowed, list) else [allowed]
        problem = f"must be of type {' or '.join(types)}"
    elif rule in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        relation = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[rule]
        problem = f"must be {relation} {allowed}"
    else:
        problem = error.message
    return InputError(source, key or "(top level)", error.instance, problem)


def key_path(parts) -> str:
    """['training', 'runs', 'vbpr', 'random', 1] -> 'training.runs.vbpr.random[1]'."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def check_config(config: Mapping[str, Any], source: str = CONFIG_NAME) -> None:
    """Raise :class:`InputError` naming the key and value of the first broken rule between keys."""
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
    k = clusters.get("k", 2)
    if k < 2:
        raise InputError(source, "clusters.k", k, "need at least 2 clusters")
    if dataset:
        n_items, where = item_count(dataset)
        if k >= n_items:
            raise InputError(source, "clusters.k", k, f"must be below the number of items ({n_items:,} in {where})")
    training = config.get("training", {})
    if training.get("min_steps", 0) > training.get("max_steps", math.inf):
        raise InputError(
            source, "training.min_steps", training["min_steps"], f"must not exceed max_steps ({training['max_steps']})"
        )
    runs = training.get("runs", {})
    for model, grid in runs.items():
        for sampling, values in grid.items():
            if len(set(values)) != len(values):
                raise InputError(source, f"training.runs.{model}.{sampling}", values, "repeated L2 value")


def item_count(dataset: Mapping[str, Any]) -> tuple[int, str]:
    """Items the configured data set will have, and where that number comes from, without loading it:
    the generator's preset and scale, or the rows of the real inventory file."""
    if dataset.get("format", "synthetic") == "synthetic":
        from curatornet.data.synthetic import parameters_for

        synthetic = dataset.get("synthetic", {})
        preset, scale = synthetic.get("preset", "default"), float(synthetic.get("scale", 1.0))
        return parameters_for(preset, scale).n_items, f"the generated data set (preset {preset!r}, scale {scale:g})"
    from curatornet.data.layout import find_layout

    inventory = find_layout(dataset["path"]).inventory
    if not inventory.is_file():
        raise InputError(inventory, None, str(inventory), "inventory file does not exist")
    with inventory.open(newline="", encoding="utf-8", errors="replace") as handle:
        rows = sum(1 for _ in csv.reader(handle)) - 1  # minus the header
    return max(rows, 0), str(inventory)


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
