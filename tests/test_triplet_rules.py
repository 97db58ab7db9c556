"""The triplet rules: a changed budget reruns only its shard, the random shard and the merge.

Runs Snakemake in a subprocess on the hand-made data of test_sampling, with a
Snakefile that includes only common.smk and triplets.smk (the inputs are
written directly), then dry-runs it with edited configurations.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_sampling import clusters_frame, items_frame, purchases_frame

from curatornet.artifacts import GUIDELINES, SHARDS
from curatornet.errors import InputError
from curatornet.io import write_parquet
from curatornet.sampling import plan, shard_seed

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def write_config(path: Path, budgets: dict, max_profile: int = 3) -> None:
    path.write_text(yaml.safe_dump({"seed": 42, "sampling": {"budgets": budgets, "max_profile": max_profile}}))


def snakemake(workdir: Path, config: Path, *args: str) -> str:
    command = [
        str(SNAKEMAKE),
        "results/triplets/dedup.csv",
        "--snakefile",
        str(workdir / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(config),
        "--cores",
        "2",
        "--rerun-triggers",
        "mtime",
        "params",
        "input",
        "code",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def planned_jobs(output: str) -> set[str]:
    """Rule names of the 'Job stats' table of a dry run."""
    if "Nothing to be done" in output:
        return set()
    table = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+\s*$", table, flags=re.M)}


@pytest.fixture(scope="module")
def workflow_dir(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("triplet_rules")
    (workdir / "Snakefile").write_text(
        "from snakemake.utils import validate\n"
        f'validate(config, "{REPO}/workflow/schemas/config.schema.yaml")\n'
        f'include: "{REPO}/workflow/rules/common.smk"\n'
        f'include: "{REPO}/workflow/rules/triplets.smk"\n'
    )
    items = items_frame().assign(artist_id=lambda f: f["artist_id"].astype(object))
    write_parquet(items, workdir / "results/data/items.parquet")
    write_parquet(purchases_frame(), workdir / "results/data/purchases.parquet")
    write_parquet(clusters_frame(), workdir / "results/clusters/items.parquet")
    return workdir


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
    assert set(plan.shard_inputs("d5_single_item")) == {"inventory"}
    assert set(plan.shard_inputs("d4_profile")) == {"inventory", "purchases"}
    assert set(plan.shard_inputs("d3_artist_cluster")) == {"inventory", "purchases", "clusters"}
    del config["sampling"]["budgets"]["d2_next_basket"]
    with pytest.raises(InputError) as info:
        plan.shard_budget(config, "d1_basket")
    assert info.value.field == "sampling.budgets.d2_next_basket"


@pytest.mark.slow
def test_changed_budget_reruns_only_its_shard(workflow_dir):
    base = workflow_dir / "base.yaml"
    write_config(base, budgets())
    snakemake(workflow_dir, base)
    report = pd.read_csv(workflow_dir / "results/triplets/dedup.csv")
    assert report["guideline"].drop_duplicates().tolist() == list(SHARDS)
    assert report.loc[report["guideline"] == "random", "before"].tolist() == [120, 24]  # sums of the budgets
    for shard in SHARDS:
        assert (workflow_dir / f"logs/triplets/sample_{shard}.log").exists()
        assert (workflow_dir / f"benchmarks/results/triplets/sample_{shard}.tsv").exists()
    assert planned_jobs(snakemake(workflow_dir, base, "-n")) == set()

    edited = workflow_dir / "edited.yaml"
    write_config(edited, budgets(d3_artist_cluster={"train": 15, "valid": 4}))
    assert planned_jobs(snakemake(workflow_dir, edited, "-n")) == {
        "sample_d3_artist_cluster",
        "sample_random",
        "dedup_triplets",
    }
    # max_profile does not concern the one-item profiles of D5 and D6
    write_config(edited, budgets(), max_profile=5)
    assert planned_jobs(snakemake(workflow_dir, edited, "-n")) == {
        f"sample_{s}" for s in SHARDS if s not in ("d5_single_item", "d6_same_artist")
    } | {"dedup_triplets"}
