"""Logging set-up shared by the workflow scripts and the command line."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from curatornet.errors import InputError

log = logging.getLogger("curatornet")


def setup_logging(log_file: str | Path | None = None, level: int = logging.INFO) -> logging.Logger:
    """Send the package's log records to ``log_file`` (and stderr), replacing earlier handlers."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w", encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(fmt)
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
