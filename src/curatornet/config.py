"""Checking a configuration before anything runs.

:func:`validate_config` is what the workflow calls: the JSON schema
(workflow/schemas/config.schema.yaml, with the blocks of the registered parts
added: :func:`effective_schema`) first, reported as the one failing key
rather than a dump of the schema; then the defaults; then the rules between
keys that a schema cannot express (:func:`check_config`). The schema is also
the only source of defaults (:func:`schema_defaults`) for code run outside the
workflow, such as the command line.
"""

from __future__ import annotations

import copy
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


def effective_schema(schema: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The config schema with what the registered parts add (:mod:`curatornet.parts`).

    A model gets its run grid (``training.runs.<model>``) and, unless the
    schema file has it, its own block ``training.<model>`` (its record's
    ``schema``; an empty object without one); a baseline with a ``schema``
    gets ``evaluation.<baseline>``; every guideline gets its budget
    (``sampling.budgets.<guideline>``); ``recommendations.recommenders`` may
    name every model and every baseline that can write batch recommendations.
    """
    from curatornet import parts

    out = copy.deepcopy(dict(load_schema() if schema is None else schema))
    props = out["properties"]
    training, evaluation = props["training"]["properties"], props["evaluation"]["properties"]
    for spec in parts.models():
        training["runs"]["properties"].setdefault(spec.name, {"$ref": "#/$defs/run_grid"})
        block = dict(spec.schema) if spec.schema else {"type": "object", "additionalProperties": False}
        block.setdefault("description", f"{spec.display}'s hyperparameters (its plugin's schema block).")
        block.setdefault("default", {})
        training.setdefault(spec.name, block)
    for spec in parts.baselines():
        if spec.schema:
            evaluation.setdefault(spec.name, {"default": {}, **dict(spec.schema)})
    budgets = props["sampling"]["properties"]["budgets"]["properties"]
    for spec in parts.guidelines():
        budgets.setdefault(spec.name, {"$ref": "#/$defs/budget"})
    props["recommendations"]["properties"]["recommenders"]["items"]["enum"] = list(parts.batch_recommenders())
    return out


def fill_defaults(schema: Mapping[str, Any], value: Any, root: Mapping[str, Any] | None = None) -> None:
    """Set every missing key that has a default, in place, as Snakemake's validation does: an object's
    missing property gets a copy of its default, then its properties are filled in turn."""
    root = schema if root is None else root
    schema = _dereference(schema, root)
    if not isinstance(value, MutableMapping):
        return
    for name, spec in schema.get("properties", {}).items():
        spec = _dereference(spec, root)
        if name not in value and "default" in spec:
            value[name] = copy.deepcopy(spec["default"])
        if name in value:
            fill_defaults(spec, value[name], root)


def _dereference(node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """The schema a local ``$ref`` ("#/$defs/budget") points to, or ``node`` itself."""
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return node
    target: Any = root
    for part in ref[2:].split("/"):
        target = target[part]
    return target


def schema_defaults(node: Mapping[str, Any] | None = None) -> Any:
    """The default of every key of the schema, nested like a config.

    Objects are filled from their properties' defaults, as Snakemake's
    validation does; keys without a default (budgets, run grids) are left out.
    Without ``node``: the effective schema (the registered parts' blocks included).
    """
    node = effective_schema() if node is None else node
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
    """Check ``config`` against the schema (with the registered parts' blocks, after importing
    the plugins it names), fill in the defaults, check the cross-key rules and sort every
    mapping's keys, all in place.

    Raises :class:`InputError` naming the first failing key (its dotted path),
    its value and what is allowed there; ``source`` names the config files.
    """
    import jsonschema
    import yaml

    from curatornet.registry import use_plugins

    plugins = config.get("plugins")
    if isinstance(plugins, list) and all(isinstance(name, str) for name in plugins):
        use_plugins(plugins, source)  # their parts belong to the schema (the workflow imported them already)
    schema = effective_schema(yaml.safe_load(Path(schema_path).read_text(encoding="utf-8")))
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(config))
    if error is not None:
        raise schema_error(error, source)
    fill_defaults(schema, config)
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
    """['training', 'runs', 'model', 'random', 1] -> 'training.runs.model.random[1]'."""
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
    budgets = config.get("sampling", {}).get("budgets")
    if budgets:  # a config that gives budgets gives every guideline's (a plugin's too)
        from curatornet import parts

        missing = [name for name in parts.guideline_names() if name not in budgets]
        if missing:
            raise InputError(source, f"sampling.budgets.{missing[0]}", None, "every guideline needs a budget")
    runs = training.get("runs", {})
    for model, grid in runs.items():
        for sampling, values in grid.items():
            if len(set(values)) != len(values):
                raise InputError(source, f"training.runs.{model}.{sampling}", values, "repeated L2 value")
    ablation = config.get("ablation", {})
    if ablation.get("guidelines") or ablation.get("poolings"):
        model = ablation.get("model")
        if not runs.get(model, {}).get("guidelines"):
            raise InputError(
                source,
                "ablation.model",
                model,
                "the ablation trains at this model's λ selected with guidelines: "
                f"training.runs.{model}.guidelines needs a value",
            )
        if ablation.get("poolings") and "pooling" not in (training.get(model) or {}):
            raise InputError(source, "ablation.poolings", ablation["poolings"], f"model {model} has no pooling to vary")


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
