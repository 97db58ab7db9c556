"""The workflow as a user runs it: lint, parse without TensorFlow, a tiny end-to-end run.

The end-to-end run works in a copy of the project so that it never touches the
user's own results/ folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PROJECT_PARTS = ("Snakefile", "workflow", "config", "src", "envs", "profiles")
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def copy_project(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for part in PROJECT_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, dest / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif source.exists():
            shutil.copy2(source, dest / part)
    return dest


def snakemake(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run([*SNAKEMAKE, *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)


def test_lint_is_clean():
    result = snakemake(REPO, "--lint", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_parsing_the_workflow_does_not_import_tensorflow(tmp_path):
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('TF_LOADED=' + str('tensorflow' in sys.modules)))\n"
        "from snakemake.cli import main\n"
        "sys.argv = ['snakemake', '-n', '--quiet', '--configfile', 'config/test.yaml']\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert "TF_LOADED=False" in result.stdout, result.stdout + result.stderr


def test_unknown_config_key_is_rejected_with_its_name(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"clusters": {"k": 5, "restars": 3}}))
    result = snakemake(REPO, "-n", "--configfile", str(bad), timeout=120)
    assert result.returncode != 0
    assert "restars" in result.stdout + result.stderr


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = copy_project(tmp_path_factory.mktemp("tiny"))
    result = snakemake(workdir, "--cores", "2", "--configfile", "config/test.yaml")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return workdir


@pytest.mark.slow
def test_tiny_run_produces_the_report_and_every_method(tiny_run):
    summary = pd.read_csv(tiny_run / "results/evaluation/summary.csv")
    methods = set(summary["Method"].str.lower())
    assert {"curatornet", "vbpr", "visrank", "random", "oracle"} <= methods
    html = (tiny_run / "results/report/report.html").read_text()
    assert "Table 2" in html or "table" in html.lower()
    for method in ("CuratorNet", "VBPR", "VisRank", "Oracle", "Random"):
        assert method.lower() in html.lower()


@pytest.mark.slow
def test_every_rule_logged_and_nothing_left_to_do(tiny_run):
    logs = list((tiny_run / "logs").rglob("*.log"))
    assert logs, "no log files written"
    result = snakemake(tiny_run, "-n", "--configfile", "config/test.yaml", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.slow
def test_changing_one_guideline_budget_reruns_only_its_shard_and_downstream(tiny_run, tmp_path):
    config = yaml.safe_load((tiny_run / "config/test.yaml").read_text())
    config["sampling"]["budgets"]["d5_single_item"]["train"] += 10
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    result = snakemake(tiny_run, "-n", "--configfile", str(changed), "--rerun-triggers", "params", timeout=120)
    assert result.returncode == 0, result.stderr
    plan = result.stdout + result.stderr
    planned = set(re.findall(r"^rule (\w+):", plan, flags=re.MULTILINE))
    # The random shard's budget is the sum over the guidelines, so it follows the change.
    for rerun in ("sample_d5_single_item", "sample_random", "dedup_triplets"):
        assert rerun in planned, plan
    for other in ("sample_d1_basket", "sample_d6_same_artist", "clusters", "prepare_data", "generate_data"):
        assert other not in planned, f"{other} would rerun:\n{plan}"


@pytest.mark.slow
@pytest.mark.ugallery
def test_real_ugallery_transactions_reproduce_the_oracle_row(ugallery_dir, tmp_path):
    """The whole workflow on the real purchases with made-up embeddings (tiny training)."""
    workdir = copy_project(tmp_path / "project")
    overlay = tmp_path / "ugallery.yaml"
    overlay.write_text(
        yaml.safe_dump({"dataset": {"format": "ugallery", "path": str(ugallery_dir), "embeddings": "synthetic"}})
    )
    result = snakemake(
        workdir,
        "results/evaluation/summary.csv",
        "--cores",
        "2",
        "--configfile",
        "config/test.yaml",
        str(overlay),
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    summary = pd.read_csv(workdir / "results/evaluation/summary.csv").set_index("Method")
    assert (summary["users"] == 728).all()
    oracle = summary.loc["Oracle"]
    assert round(oracle["P@20"], 4) == 0.0655
    assert round(oracle["P@100"], 4) == 0.0131
    assert abs(summary.loc["Random", "AUC"] - 0.5) < 0.03
