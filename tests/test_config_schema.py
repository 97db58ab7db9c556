"""The config schema documents every key, and config/config.yaml agrees with its defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
DEFAULT_CONFIG = yaml.safe_load((REPO / "config/config.yaml").read_text())


def schema_keys(node: dict, path: str = ""):
    for name, spec in node.get("properties", {}).items():
        yield f"{path}{name}", spec
        yield from schema_keys(spec, f"{path}{name}.")


def lookup(config: dict, dotted: str):
    value = config
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return KeyError
        value = value[part]
    return value


@pytest.mark.parametrize("key,spec", list(schema_keys(SCHEMA)), ids=lambda v: v if isinstance(v, str) else "")
def test_every_key_has_a_description_and_default(key, spec):
    if "$ref" in spec:  # budgets and run grids: described once in $defs, required values
        return
    assert spec.get("description"), f"{key} has no description"
    assert "default" in spec, f"{key} has no default"


@pytest.mark.parametrize(
    "key,spec",
    [(k, s) for k, s in schema_keys(SCHEMA) if "default" in s and not isinstance(s["default"], dict)],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_default_config_matches_schema_defaults(key, spec):
    value = lookup(DEFAULT_CONFIG, key)
    if value is not KeyError:
        assert value == spec["default"], f"config/config.yaml {key}={value!r}, schema default {spec['default']!r}"
