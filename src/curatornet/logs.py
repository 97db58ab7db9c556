"""Logging set-up shared by the workflow scripts and the command line."""

from __future__ import annotations

import atexit
import contextlib
import logging
import resource
import sys
from collections.abc import Iterator
from pathlib import Path

from curatornet.errors import InputError

log = logging.getLogger(__name__.partition(".")[0])  # the package's logger: every module logs through it

#: The line every job's log ends with; benchmarks/bench_scale.py reads it.
PEAK_MEMORY_MESSAGE = "peak memory of this process: %d MB (max RSS), CPU time %.1f s"

LOG_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")

#: The log file of this process's job, which gets the peak-memory line at exit.
_job_log_file: Path | None = None


def log_peak_memory() -> None:
    """Append the process's peak resident memory and CPU time to the job's log file.

    Snakemake's own benchmark samples both and can miss a peak; the CPU time
    also tells how much of a job's wall time a busy machine took away. Written
    to the file directly: at exit the logging handlers may already be closed.
    """
    if _job_log_file is None:
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_mb = usage.ru_maxrss // 1024  # Linux reports KiB
    args = (peak_mb, usage.ru_utime + usage.ru_stime)
    record = logging.LogRecord(log.name, logging.INFO, __file__, 0, PEAK_MEMORY_MESSAGE, args, None)
    try:
        with open(_job_log_file, "a", encoding="utf-8") as handle:
            handle.write(LOG_FORMAT.format(record) + "\n")
    except OSError:
        pass  # the log's folder is gone (a test's temporary folder): nothing to report to


def setup_logging(log_file: str | Path | None = None, level: int = logging.INFO) -> logging.Logger:
    """Send the package's log records to ``log_file`` (and stderr), replacing earlier handlers.

    With a log file (a workflow job), the process's peak memory is appended to it when it exits.
    """
    global _job_log_file
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w", encoding="utf-8"))
        if _job_log_file is None:
            atexit.register(log_peak_memory)
        _job_log_file = Path(log_file)
    for handler in handlers:
        handler.setFormatter(LOG_FORMAT)
        root.addHandler(handler)
    root.setLevel(level)
    return log


@contextlib.contextmanager
def logged_job(log_file: str | Path) -> Iterator[logging.Logger]:
    """Run the body of a workflow job with its log going to ``log_file`` (and stderr).

    Every failure ends up in the log file, because on a cluster (and in
    ``snakemake --show-failed-logs``) that file is all a user sees: bad input
    (:class:`InputError`) as its one-line message, anything else with its
    traceback. Either way the job then exits with status 1, so the traceback
    is not printed a second time.
    """
    job_log = setup_logging(log_file)
    try:
        yield job_log
    except InputError as error:
        job_log.error("%s", error)
        raise SystemExit(1) from None
    except Exception:
        job_log.exception("the job failed unexpectedly")
        raise SystemExit(1) from None
