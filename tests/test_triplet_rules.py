"""The triplet rules: a changed budget reruns only its shard, the random shard and the merge.

Runs Snakemake in a subprocess on the hand-made data of test_sampling, with a
Snakefile that includes only the stages up to the triplets and asks for
nothing upstream (the tables are written directly, newer than the rules'
inputs would be), then dry-runs it with edited configurations.
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

from curatornet import parts
from curatornet.errors import InputError
from curatornet.io import write_parquet
from curatornet.sampling import plan, shard_seed

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "workflow" / "rules"
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
GUIDELINES = parts.guideline_names()
SHARDS = parts.shard_names()


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


def planned_jobs(output: str) -> set[tuple[str, str]]:
    """(rule, shard) of every job of a dry run ("" for jobs without a shard)."""
    jobs = set()
    for block in re.split(r"\n(?=\[[^\]]+\]\n)", output):
        rule = re.search(r"^(?:local)?rule (\w+):", block, flags=re.M)
        if rule:
            shard = re.search(r"^\s+wildcards: shard=(\w+)", block, flags=re.M)
            jobs.add((rule.group(1), shard.group(1) if shard else ""))
    return jobs


@pytest.fixture(scope="module")
def workflow_dir(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("triplet_rules")
    # The real stage files; the data and clusters rules are included only for the
    # names of their outputs (their inputs do not exist here, their outputs do).
    (workdir / "Snakefile").write_text(
        f'include: "{RULES}/common.smk"\n'
        f'validate_config(config, "{REPO}/workflow/schemas/config.schema.yaml")\n'
        f'include: "{RULES}/data.smk"\n'
        f'include: "{RULES}/clusters.smk"\n'
        f'include: "{RULES}/triplets.smk"\n'
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
    tables = {"inventory": "i.parquet", "purchases": "p.parquet", "clusters": "c.parquet"}
    assert plan.shard_inputs("d5_single_item", tables) == {"inventory": "i.parquet"}
    assert set(plan.shard_inputs("d4_profile", tables)) == {"inventory", "purchases"}
    assert set(plan.shard_inputs("d3_artist_cluster", tables)) == {"inventory", "purchases", "clusters"}
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
        assert (workflow_dir / f"logs/triplets/sample_shard/{shard}.log").exists()
        assert (workflow_dir / f"benchmarks/results/triplets/sample_shard/{shard}.tsv").exists()
    assert planned_jobs(snakemake(workflow_dir, base, "-n")) == set()

    edited = workflow_dir / "edited.yaml"
    write_config(edited, budgets(d3_artist_cluster={"train": 15, "valid": 4}))
    assert planned_jobs(snakemake(workflow_dir, edited, "-n")) == {
        ("sample_shard", "d3_artist_cluster"),
        ("sample_shard", "random"),
        ("sample_shard", "bpr"),
        ("dedup_triplets", ""),
    }
    # max_profile does not concern the one-item profiles of D5 and D6, nor the profile-free bpr shard
    write_config(edited, budgets(), max_profile=5)
    assert planned_jobs(snakemake(workflow_dir, edited, "-n")) == {
        ("sample_shard", s) for s in SHARDS if s not in ("d5_single_item", "d6_same_artist", "bpr")
    } | {("dedup_triplets", "")}
