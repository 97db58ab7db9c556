# Validation and small helpers shared by every stage. Nothing heavy is imported
# here: this file runs each time the workflow is parsed.
import os
import sys
from pathlib import Path

# The package lives in src/. Make it importable here and in every job (scripts run
# in their own process, possibly in a conda env or on a cluster node, which all
# inherit the environment), even when it has not been pip-installed. Nothing is
# asked of the user here (so no `envvars:`): every parse, on a cluster node too, sets it.
_SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, _SRC)
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (_SRC, os.environ.get("PYTHONPATH")) if p))

from curatornet.artifacts import BPR_SHARD, GUIDELINES, RANDOM_SHARD, SHARDS, l2_label  # noqa: E402
from curatornet.config import check_config, sorted_config  # noqa: E402
from curatornet.models.settings import triplet_set  # noqa: E402

check_config(config)
# Reordering keys in a config file must not rerun anything (params compare as text).
config.update(sorted_config(config))

SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"


wildcard_constraints:
    guideline="|".join(SHARDS),
    model="curatornet|vbpr",
    sampling="guidelines|random",
    l2=r"[0-9.e-]+",
    seed=r"\d+",


def per_attempt(base):
    """A resource that grows with each retry: `base` on the first attempt, twice it on the second."""
    return lambda wildcards, attempt: int(base) * attempt


def training_runs():
    """(model, sampling, l2 label, seed) for every training job the config asks for."""
    runs = []
    for model, grid in config["training"]["runs"].items():
        for sampling, values in grid.items():
            for value in values:
                for seed in config["training"]["seeds"]:
                    runs.append((model, sampling, l2_label(value), int(seed)))
    return runs


def model_dirs():
    return [f"results/models/{m}/{s}/l2_{l}/seed_{seed}" for m, s, l, seed in training_runs()]


def run_triplets(split):
    """Input function: the merged triplet file of a run's triplet set (guidelines, random or bpr)."""
    return lambda wildcards: f"results/triplets/{triplet_set(wildcards.model, wildcards.sampling)}/{split}.parquet"


def final_outputs():
    return ["results/report/report.html"]
