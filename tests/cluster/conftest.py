"""A real single-node SLURM cluster for the tests marked `slurm`.

The session fixture `slurm_cluster` runs tests/cluster/start.sh (installs
slurm-wlm and munge with apt-get when missing, starts the daemons, waits for
an idle node) and always runs stop.sh at the end. When the cluster cannot be
started (not root, no apt-get, a daemon fails) the tests are skipped with the
reason; set SLURM_TEST_REQUIRED=1 (CI) to make that a failure instead.

Other settings: SLURM_TEST_DIR (scratch folder), SLURM_TEST_ACCOUNTING
(`none`, the default, or `slurmdbd`), SLURM_TEST_KEEP=1 (leave the cluster
running after the session, for debugging; start.sh reuses it next time).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import HERE, SlurmCluster

# Installing the packages takes ~25 s on a fresh machine; leave room for a slow mirror.
START_TIMEOUT_S = 900
STOP_TIMEOUT_S = 120


def pytest_collection_modifyitems(config, items):
    """Run the SLURM tests last: the cheap unit tests (which import the project)
    report first, and the slow cluster runs cannot delay them."""
    items.sort(key=lambda item: item.get_closest_marker("slurm") is not None)


def _script(name: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(HERE / name)], env=env, capture_output=True, text=True, timeout=timeout)


def _cannot_start(reason: str):
    if os.environ.get("SLURM_TEST_REQUIRED") == "1":
        pytest.fail(f"SLURM test cluster required but unavailable: {reason}", pytrace=False)
    pytest.skip(f"no local SLURM cluster: {reason}")


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    if sys.platform != "linux" or shutil.which("bash") is None:
        _cannot_start("needs Linux with bash")
    if os.geteuid() != 0:
        _cannot_start("needs root to install and start slurmctld/slurmd/munged (run the tests as root, e.g. in CI)")
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        _cannot_start("SLURM is not installed and there is no apt-get to install it")

    scratch = Path(os.environ.get("SLURM_TEST_DIR", "/tmp/curatornet-slurm"))
    accounting = os.environ.get("SLURM_TEST_ACCOUNTING", "none")
    env = {**os.environ, "SLURM_TEST_DIR": str(scratch), "SLURM_TEST_ACCOUNTING": accounting}
    started = time.monotonic()
    try:
        result = _script("start.sh", env, START_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _script("stop.sh", env, STOP_TIMEOUT_S)
        _cannot_start(f"start.sh did not finish within {START_TIMEOUT_S}s")
    if result.returncode != 0:
        _script("stop.sh", env, STOP_TIMEOUT_S)
        _cannot_start(f"start.sh failed:\n{result.stderr[-3000:]}")
    try:
        cluster_env = {
            **env,
            "SLURM_CONF": str(scratch / "etc" / "slurm.conf"),
            "PATH": f"/usr/sbin:{env.get('PATH', '')}",
            "PYTHONHASHSEED": "0",
        }
        start_seconds = time.monotonic() - started
        sinfo = subprocess.run(["sinfo", "-h", "-o", "%c"], env=cluster_env, capture_output=True, text=True, timeout=30)
        cluster = SlurmCluster(
            scratch=scratch,
            env=cluster_env,
            accounting=accounting,
            start_seconds=start_seconds,
            cpus=int(sinfo.stdout.split()[0]),
        )
        print(f"\n[slurm] cluster ready in {start_seconds:.1f}s ({result.stderr.strip().splitlines()[-1]})")
        yield cluster
    finally:
        # Always, even when a test or this setup failed: no daemon outlives the session.
        if os.environ.get("SLURM_TEST_KEEP") != "1":
            _script("stop.sh", env, STOP_TIMEOUT_S)
