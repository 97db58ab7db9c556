"""What each triplet job of the workflow reads and depends on (used by workflow/rules/triplets.smk).

Each shard's params hold only what that shard depends on: its budget, its
seed, and ``max_profile`` where profiles can have more than one item. So
editing one guideline's budget reruns that shard, the random shard (whose
budget is the sum over the guidelines) and the merge, nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from curatornet import parts
from curatornet.artifacts import RANDOM_SHARD
from curatornet.errors import InputError
from curatornet.sampling.guidelines import SCHEMES, random_budget
from curatornet.seeds import stream_seed

#: Memory of a shard job: a fixed part (interpreter, one draw chunk of 2M triples)
#: plus the finished shard. Measured on the default data: D3 with 1.7M triples
#: peaks at 1.3 GB, the paper's random shard (10.3M) at 1.7 GB.
SHARD_FIXED_MB = 1500
SHARD_BYTES_PER_TRIPLE = 120
#: The merge holds the shards read and the merged copy: measured (paper budget) in the report.
MERGE_FIXED_MB = 1000
MERGE_BYTES_PER_TRIPLE = 300


def shard_budget(config: Mapping[str, Any], shard: str) -> dict[str, int]:
    """{"train": n, "valid": n} of a shard; the random and bpr shards get the sums over the guidelines."""
    budgets = config["sampling"]["budgets"]
    missing = [g for g in parts.guideline_names() if g not in budgets]
    if missing:
        raise InputError(
            "config", f"sampling.budgets.{missing[0]}", sorted(budgets), "budget of this guideline is missing"
        )
    if shard in SCHEMES:
        return random_budget(budgets)
    return {"train": int(budgets[shard]["train"]), "valid": int(budgets[shard]["valid"])}


def shard_inputs(shard: str, tables: Mapping[str, str], refit: bool = False) -> dict[str, str]:
    """The input files of a shard's job, chosen from ``tables`` (paths of ``inventory``,
    ``purchases`` and ``clusters``): what this shard reads, so that it depends on nothing else.
    A refit shard always reads the purchases: their growth scales its budget."""
    needs = parts.shard(shard).needs
    names = ["inventory"] + [
        name for name in ("purchases", "clusters") if name in needs or (refit and name == "purchases")
    ]
    return {name: tables[name] for name in names}


def shard_params(config: Mapping[str, Any], shard: str) -> dict[str, Any]:
    """What one shard's triples depend on: its budget, its seed (a hash of its name) and, unless its
    profiles are single items, ``max_profile``."""
    spec = parts.shard(shard)
    params: dict[str, Any] = {"guideline": shard, "seed": spec.seed(config["seed"]), **shard_budget(config, shard)}
    if not spec.single_item_profiles:
        params["max_profile"] = config["sampling"]["max_profile"]  # None: whole profiles
    return params


def refit_shard_params(config: Mapping[str, Any], shard: str) -> dict[str, Any]:
    """A refit shard (``training.refit``): the shard's settings drawn from every purchase before the
    test baskets, its own seed, its training budget scaled in the job by the growth of the purchases
    (:func:`curatornet.sampling.data.refit_view`), no validation triples (the refit checks nothing)."""
    params = shard_params(config, shard)
    return params | {"seed": stream_seed(config["seed"], f"refit/{shard}"), "valid": 0, "refit": True}


def refit_budget(settings: Mapping[str, Any], ratio: float) -> dict[str, int]:
    """The training and validation triples a refit shard draws: its budget times ``ratio``."""
    return {split: int(round(int(settings[split]) * ratio)) for split in ("train", "valid")}


def headroom_params(config: Mapping[str, Any], guideline: str) -> dict[str, Any]:
    """A guideline's headroom shard for the leave-one-out sets (``ablation.guidelines``): the shard's
    settings with its own seed and the triples beyond its shard that those sets may need
    (:func:`curatornet.sampling.ablation.headroom_budget`)."""
    from curatornet.sampling.ablation import headroom_budget

    budgets = {name: shard_budget(config, name) for name in parts.guideline_names()}
    extra = headroom_budget(budgets, guideline, float(config["ablation"]["headroom"]))
    return shard_params(config, guideline) | extra | {"seed": stream_seed(config["seed"], f"headroom/{guideline}")}


def shard_mem_mb(config: Mapping[str, Any], shard: str) -> int:
    budget = shard_budget(config, shard)
    return SHARD_FIXED_MB + (budget["train"] + budget["valid"]) * SHARD_BYTES_PER_TRIPLE // 1_000_000


def dedup_mem_mb(config: Mapping[str, Any]) -> int:
    """Guidelines and random are merged one after the other: size for the larger."""
    guidelines = sum(sum(shard_budget(config, g).values()) for g in parts.guideline_names())
    largest = max(guidelines, sum(shard_budget(config, RANDOM_SHARD).values()))  # bpr: same budget, no profiles
    return MERGE_FIXED_MB + largest * MERGE_BYTES_PER_TRIPLE // 1_000_000
