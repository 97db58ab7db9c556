"""The plan of the triplet rules: each shard's params, inputs and budget.

What a changed budget or ``max_profile`` reruns is checked by dry runs of the
tiny run in test_workflow.
"""

from __future__ import annotations

import pytest

from curatornet import parts
from curatornet.errors import InputError
from curatornet.sampling import plan, shard_seed

GUIDELINES = parts.guideline_names()


def budgets(**changes) -> dict:
    out = {g: {"train": 20, "valid": 4} for g in GUIDELINES}
    for guideline, budget in changes.items():
        out[guideline] = budget
    return out


def test_plan_of_the_shard_rules():
    config = {"seed": 42, "sampling": {"budgets": budgets(d1_basket={"train": 7, "valid": 1}), "max_profile": 9}}
    assert plan.shard_params(config, "d1_basket") == {
        "guideline": "d1_basket",
        "seed": shard_seed(42, "d1_basket"),
        "train": 7,
        "valid": 1,
        "max_profile": 9,
    }
    assert "max_profile" not in plan.shard_params(config, "d6_same_artist")
    assert plan.shard_budget(config, "random") == {"train": 7 + 5 * 20, "valid": 1 + 5 * 4}
    tables = {"inventory": "i.parquet", "purchases": "p.parquet", "clusters": "c.parquet"}
    assert plan.shard_inputs("d5_single_item", tables) == {"inventory": "i.parquet"}
    assert set(plan.shard_inputs("d4_profile", tables)) == {"inventory", "purchases"}
    assert set(plan.shard_inputs("d3_artist_cluster", tables)) == {"inventory", "purchases", "clusters"}
    del config["sampling"]["budgets"]["d2_next_basket"]
    with pytest.raises(InputError) as info:
        plan.shard_budget(config, "d1_basket")
    assert info.value.field == "sampling.budgets.d2_next_basket"
