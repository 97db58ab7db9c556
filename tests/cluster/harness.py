"""Helpers for the SLURM tests: run Snakemake on the test cluster, count its jobs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+)")
STARTED = re.compile(r"^\s*Date: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", re.M)
# Snakemake prints "[Mon Nov 23 05:20:42 2026]" on the line before each report,
# "Error in rule R:" for a job, "    message: Error in group G" for a group job.
FIRST_ERROR = re.compile(
    r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]\n(?:Error in rule|\s+message: Error in group)", re.M
)


@dataclass
class SnakemakeRun:
    returncode: int
    seconds: float
    log: str
    slurm_jobs: list[str] = field(default_factory=list)

    def first_error_seconds(self) -> float | None:
        """Seconds from Snakemake's start to its first "Error in rule" report."""
        started, error = STARTED.search(self.log), FIRST_ERROR.search(self.log)
        if not (started and error):
            return None
        t0 = datetime.strptime(started.group(1), "%Y-%m-%d %H:%M:%S")
        return (datetime.strptime(error.group(1), "%a %b %d %H:%M:%S %Y") - t0).total_seconds()


@dataclass
class SlurmCluster:
    scratch: Path
    env: dict[str, str]
    accounting: str
    start_seconds: float
    cpus: int

    def status_args(self) -> list[str]:
        """Options every test run passes to the SLURM executor."""
        args = [
            # The plugin's default waits 40 s before its first status query.
            "--slurm-init-seconds-before-status-checks",
            "1",
            # The test cluster has no accounts to charge.
            "--slurm-no-account",
        ]
        if self.accounting == "none":
            # sacct exists but cannot answer without slurmdbd, and the plugin
            # would wait for ever; squeue works because MinJobAge (300 s) is
            # far above 3x the 1 s status interval.
            args += ["--slurm-status-command", "squeue"]
        return args

    def snakemake(self, workdir: Path, *args: str, timeout: float = 900) -> SnakemakeRun:
        """Run Snakemake with the SLURM profile in workdir; never hangs past timeout."""
        return run_logged(self.snakemake_command(*args), workdir, self.env, timeout)

    def snakemake_command(self, *args: str) -> list[str]:
        return [
            *SNAKEMAKE,
            "--workflow-profile",
            str(REPO / "profiles" / "slurm"),
            *self.status_args(),
            # The scratch folder is local to the node: no file-system latency.
            "--latency-wait",
            "5",
            # In cluster mode --cores caps the CPUs of one SLURM job, so that
            # no rule or group job asks for more than the single node has.
            "--cores",
            str(self.cpus),
            # This site's training jobs are tiny (config/test.yaml); the profile
            # sizes them for the paper's scale, which a small node may not have.
            "--set-resources",
            "train:mem_mb=2000",
            "train:runtime=10",
            *args,
        ]


class LoggedProcess:
    """A command started in its own session with its output in a log file, so
    that a timeout can kill it with everything it started."""

    def __init__(self, command: list[str], workdir: Path, env: dict[str, str]):
        self.started = time.monotonic()
        self.log_path = workdir / f"snakemake-{int(time.time() * 1000)}.log"
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def finish(self, timeout: float) -> SnakemakeRun:
        """Wait until `timeout` seconds after the start, then kill."""
        try:
            returncode = self.process.wait(timeout=max(1.0, self.started + timeout - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait(timeout=30)
            returncode = -9
        text = self.log_path.read_text(errors="replace")
        return SnakemakeRun(returncode, time.monotonic() - self.started, text, SUBMITTED.findall(text))


def run_logged(command: list[str], workdir: Path, env: dict[str, str], timeout: float) -> SnakemakeRun:
    return LoggedProcess(command, workdir, env).finish(timeout)
