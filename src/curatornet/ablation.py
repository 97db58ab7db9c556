"""Which parts of CuratorNet matter: the variants of the ablation (config ``ablation``), what each trains.

A *variant* is one more way to train the ablated model (``ablation.model``) at the λ
selected for it with sampling guidelines, with every seed of ``training.seeds``:

- ``without_<guideline>`` (``ablation.guidelines``): on the guidelines set less that
  guideline, as large as the full set (:mod:`curatornet.sampling.ablation`);
- ``pool_<pooling>`` (``ablation.poolings``): on the full guidelines set, with another
  profile pooling than ``training.<model>.pooling`` (``mean+max`` is ``pool_mean_max``).

Every guideline of the registry gets its variant, a plugin's too. The full set's side of
every comparison is the model's selected guidelines run before refit: trained like the
variants, on the training baskets and stopped on the validation baskets. This module
imports no TensorFlow: the workflow reads it while parsing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from curatornet import parts
from curatornet.models.settings import job_settings
from curatornet.sampling.ablation import WITHOUT

#: The prefix of a pooling variant's name.
POOL = "pool_"


@dataclass(frozen=True)
class Variant:
    name: str
    left_out: str  # the guideline left out; "" for a pooling variant
    pooling: str  # the profile pooling; "" for a guideline variant (the configured one)


def pooling_variant(pooling: str) -> str:
    return POOL + pooling.replace("+", "_")


def variants(config: Mapping[str, Any]) -> list[Variant]:
    """The variants the config asks for: the leave-one-out sets in registry order, then the poolings."""
    ablation = config["ablation"]
    out = []
    if ablation["guidelines"]:
        out += [Variant(WITHOUT + name, name, "") for name in parts.guideline_names()]
    configured = (config["training"].get(ablation["model"]) or {}).get("pooling")
    out += [Variant(pooling_variant(p), "", p) for p in ablation["poolings"] if p != configured]
    return out


def variant(config: Mapping[str, Any], name: str) -> Variant:
    for candidate in variants(config):
        if candidate.name == name:
            return candidate
    raise KeyError(name)


def variant_settings(config: Mapping[str, Any], name: str, seed: int) -> dict[str, Any]:
    """Settings of one variant's training job but λ (the selection's when the job runs): the ablated
    model's guidelines runs' settings, with the variant's pooling."""
    model = config["ablation"]["model"]
    settings = job_settings(config, model, "guidelines", 0.0, seed)
    del settings["l2"]
    pooling = variant(config, name).pooling
    if pooling:
        settings["hyperparameters"] = {**settings["hyperparameters"], "pooling": pooling}
    return settings
