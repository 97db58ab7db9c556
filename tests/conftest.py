"""Shared test helpers: where the repository and the real UGallery files are, and the tiny workflow run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
UGALLERY = REPO.parent / "shared" / "ugallery"
PROJECT_PARTS = ("workflow", "config", "src", "envs", "profiles")
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
#: The overlay that adds the toy plugin (tests/toy_parts.py) to the tiny run: it is on the path
#: of every Snakemake the tests start (the tests folder), and no project file names it.
TOY_OVERLAY = TESTS / "toy_parts.yaml"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def ugallery_dir() -> Path:
    """The real UGallery files; tests that need them skip when the folder is absent."""
    if not (UGALLERY / "valid_sales.csv").exists():
        pytest.skip(f"real UGallery files not found at {UGALLERY}")
    return UGALLERY


def copy_project(dest: Path) -> Path:
    """The project's workflow, configs, package, environments and profiles in ``dest`` (never the user's results)."""
    dest.mkdir(parents=True, exist_ok=True)
    for part in PROJECT_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(
                source, dest / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".snakemake")
            )
        elif source.exists():
            shutil.copy2(source, dest / part)
    return dest


def snakemake(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Snakemake in ``workdir``; the tests folder is on its path, so a config may name the toy plugin."""
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": path}
    env.pop("CURATORNET_PLUGINS", None)
    return subprocess.run([*SNAKEMAKE, *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)


def tiny_config() -> dict:
    """config/test.yaml with the toy overlay merged over it (what the tiny run ran with)."""
    config = yaml.safe_load((REPO / "config/test.yaml").read_text())
    overlay = yaml.safe_load(TOY_OVERLAY.read_text())
    config["plugins"] = overlay["plugins"]
    config["training"]["runs"].update(overlay["training"]["runs"])
    config["sampling"]["budgets"].update(overlay["sampling"]["budgets"])
    return config


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The tiny workflow (config/test.yaml) run once in a copy of the project, with the toy plugin's
    model, baseline, metric and guideline (tests/toy_parts.yaml) beside the built-in parts."""
    workdir = copy_project(tmp_path_factory.mktemp("tiny"))
    result = snakemake(workdir, "--cores", "2", "--configfile", "config/test.yaml", str(TOY_OVERLAY))
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return workdir
