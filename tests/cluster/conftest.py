"""A real single-node SLURM cluster for the tests marked `slurm`.

tests/cluster/start.sh installs slurm-wlm and munge with apt-get when
missing, starts the daemons and waits for an idle node; stop.sh always runs
at the end of the session. When the cluster cannot be started (not root, no
apt-get, a daemon fails) the tests are skipped with the reason; set
SLURM_TEST_REQUIRED=1 (CI) to make that a failure instead.

The cluster starts as soon as the collection holds a SLURM test, and the
tiny run on SLURM (the longest of them, mostly waiting for status polls)
starts with it, in the background: the other tests run meanwhile, and the
SLURM tests that compare it with the local run wait for it first, before the
tests that time failures have the node to themselves.

Other settings: SLURM_TEST_DIR (scratch folder), SLURM_TEST_ACCOUNTING
(`none`, the default, or `slurmdbd`), SLURM_TEST_KEEP=1 (leave the cluster
running after the session, for debugging; start.sh reuses it next time).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import TESTS, TOY_OVERLAY, copy_project

from .harness import HERE, LoggedProcess, SlurmCluster

# Installing the packages takes ~25 s on a fresh machine; leave room for a slow mirror.
START_TIMEOUT_S = 900
STOP_TIMEOUT_S = 120
#: The fixture of the tests that compare the tiny run on SLURM with the local one.
TINY_RUN_FIXTURE = "local_and_slurm_runs"


@dataclass
class _Session:
    """The cluster of this session (or why there is none), and the tiny run started on it."""

    env: dict[str, str] | None = None
    cluster: SlurmCluster | None = None
    reason: str | None = None
    tiny_run: LoggedProcess | None = None
    tiny_dir: Path | None = None


_SESSION = _Session()


def pytest_collection_modifyitems(config, items):
    """Run the SLURM tests last: the cheap unit tests (which import the project)
    report first, and the slow cluster runs cannot delay them. Among them, the
    tests of the tiny run come first: they wait for the background run, and the
    tests that time a failure then find the node idle."""
    items.sort(
        key=lambda item: (
            item.get_closest_marker("slurm") is not None,
            TINY_RUN_FIXTURE not in getattr(item, "fixturenames", ()),
        )
    )


def pytest_collection_finish(session):
    """Start the cluster, and the tiny run on it, as soon as the selected tests need them."""
    if session.config.option.collectonly or not any(item.get_closest_marker("slurm") for item in session.items):
        return
    cluster = _start_cluster()
    if cluster is not None and any(TINY_RUN_FIXTURE in getattr(i, "fixturenames", ()) for i in session.items):
        _SESSION.tiny_dir = copy_project(Path(tempfile.mkdtemp(prefix="curatornet-slurm-tiny-")))
        # The toy plugin is on the path of Snakemake and of every SLURM job (sbatch exports the environment).
        path = os.pathsep.join(p for p in (str(TESTS), cluster.env.get("PYTHONPATH")) if p)
        env = {**cluster.env, "PYTHONPATH": path}
        env.pop("CURATORNET_PLUGINS", None)
        command = cluster.snakemake_command("--configfile", "config/test.yaml", str(TOY_OVERLAY))
        _SESSION.tiny_run = LoggedProcess(command, _SESSION.tiny_dir, env)


def pytest_sessionfinish(session, exitstatus):
    """No daemon and no run outlives the session, even when a test or the start failed."""
    if _SESSION.tiny_run is not None and _SESSION.tiny_run.process.poll() is None:
        _SESSION.tiny_run.finish(timeout=0)  # kills it and what it started
    if _SESSION.env is not None and os.environ.get("SLURM_TEST_KEEP") != "1":
        _script("stop.sh", _SESSION.env, STOP_TIMEOUT_S)
        if _SESSION.tiny_dir is not None:
            shutil.rmtree(_SESSION.tiny_dir, ignore_errors=True)


def _script(name: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(HERE / name)], env=env, capture_output=True, text=True, timeout=timeout)


def _start_cluster() -> SlurmCluster | None:
    """The running cluster, started on first call; None with ``_SESSION.reason`` when it cannot start."""
    if _SESSION.cluster is not None or _SESSION.reason is not None:
        return _SESSION.cluster
    if sys.platform != "linux" or shutil.which("bash") is None:
        _SESSION.reason = "needs Linux with bash"
    elif os.geteuid() != 0:
        _SESSION.reason = "needs root to install and start slurmctld/slurmd/munged (run the tests as root, e.g. in CI)"
    elif shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        _SESSION.reason = "SLURM is not installed and there is no apt-get to install it"
    if _SESSION.reason is not None:
        return None
    scratch = Path(os.environ.get("SLURM_TEST_DIR", "/tmp/curatornet-slurm"))
    accounting = os.environ.get("SLURM_TEST_ACCOUNTING", "none")
    env = {**os.environ, "SLURM_TEST_DIR": str(scratch), "SLURM_TEST_ACCOUNTING": accounting}
    _SESSION.env = env  # from here on stop.sh runs at the end of the session
    started = time.monotonic()
    try:
        result = _script("start.sh", env, START_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _SESSION.reason = f"start.sh did not finish within {START_TIMEOUT_S}s"
        return None
    if result.returncode != 0:
        _SESSION.reason = f"start.sh failed:\n{result.stderr[-3000:]}"
        return None
    cluster_env = {
        **env,
        "SLURM_CONF": str(scratch / "etc" / "slurm.conf"),
        "PATH": f"/usr/sbin:{env.get('PATH', '')}",
        "PYTHONHASHSEED": "0",
    }
    start_seconds = time.monotonic() - started
    sinfo = subprocess.run(["sinfo", "-h", "-o", "%c"], env=cluster_env, capture_output=True, text=True, timeout=30)
    _SESSION.cluster = SlurmCluster(
        scratch=scratch,
        env=cluster_env,
        accounting=accounting,
        start_seconds=start_seconds,
        cpus=int(sinfo.stdout.split()[0]),
    )
    print(f"\n[slurm] cluster ready in {start_seconds:.1f}s ({result.stderr.strip().splitlines()[-1]})")
    return _SESSION.cluster


def _cannot_start(reason: str):
    if os.environ.get("SLURM_TEST_REQUIRED") == "1":
        pytest.fail(f"SLURM test cluster required but unavailable: {reason}", pytrace=False)
    pytest.skip(f"no local SLURM cluster: {reason}")


@pytest.fixture(scope="session")
def slurm_cluster() -> SlurmCluster:
    cluster = _start_cluster()
    if cluster is None:
        _cannot_start(_SESSION.reason)
    return cluster


@pytest.fixture(scope="session")
def slurm_tiny_run(slurm_cluster: SlurmCluster) -> tuple[Path, LoggedProcess]:
    """The folder and the process of the tiny run on SLURM (config/test.yaml with the toy plugin's overlay),
    started when the tests were collected; the fixture that waits for it is ``local_and_slurm_runs``."""
    if _SESSION.tiny_run is None:
        raise RuntimeError(f"the tiny run on SLURM starts with the collection of a test using {TINY_RUN_FIXTURE}")
    return _SESSION.tiny_dir, _SESSION.tiny_run
