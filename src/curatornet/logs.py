"""Logging set-up shared by the workflow scripts and the command line."""

from __future__ import annotations

import atexit
import logging
import resource
import sys
from pathlib import Path

#: The line every job's log ends with; benchmarks/bench_scale.py reads it.
PEAK_MEMORY_MESSAGE = "peak memory of this process: %d MB (max RSS), CPU time %.1f s"

_peak_logged = False


def log_peak_memory() -> None:
    """Log the process's peak resident memory and CPU time.

    Snakemake's own benchmark samples both and can miss a peak; the CPU time
    also tells how much of a job's wall time a busy machine took away.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_mb = usage.ru_maxrss // 1024  # Linux reports KiB
    logging.getLogger("curatornet").info(PEAK_MEMORY_MESSAGE, peak_mb, usage.ru_utime + usage.ru_stime)


def setup_logging(log_file: str | Path | None = None, level: int = logging.INFO) -> logging.Logger:
    """Send the package's log records to ``log_file`` (and stderr), replacing earlier handlers.

    With a log file (a workflow job), the process's peak memory is logged when it exits.
    """
    global _peak_logged
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w", encoding="utf-8"))
        if not _peak_logged:
            # Registered after logging's own exit hook, so it runs while the handlers are still open.
            atexit.register(log_peak_memory)
            _peak_logged = True
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)
    root.setLevel(level)
    return logging.getLogger("curatornet")
