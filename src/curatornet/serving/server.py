"""Running the service: its settings, the checks made before it binds a port, SIGHUP, uvicorn.

- The token for changes comes from ``--token-file`` or, without one, from the
  environment variable ``CURATORNET_API_TOKEN``: at least
  :data:`MIN_TOKEN_LENGTH` visible ASCII characters. Without a token the
  service serves reads and refuses changes (403).
- Binding an address other than loopback needs a token or ``--read-only``;
  the service then says at start, as a warning, that it is exposed.
- SIGHUP reloads the model (:meth:`~curatornet.serving.recommender.Recommender.reload`)
  in a background thread, as ``POST /admin/reload`` does.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from curatornet.errors import InputError
from curatornet.serving.gate import LOOPBACK_HOSTS, TOKEN_VARIABLE, GateSettings
from curatornet.serving.recommender import Recommender, ServiceError

log = logging.getLogger(__name__)

MIN_TOKEN_LENGTH = 16
_WILDCARDS = ("0.0.0.0", "::", "")


def check_token(token: str, field: str, file: Path | None) -> str:
    """``token`` when usable in an Authorization header; never shown in the error."""
    if len(token) < MIN_TOKEN_LENGTH:
        raise InputError(
            file,
            field,
            f"{len(token)} characters",
            f"the token needs at least {MIN_TOKEN_LENGTH} characters; make one with "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'",
        )
    if not all(33 <= ord(c) <= 126 for c in token):
        raise InputError(
            file, field, "(not shown)", "the token may hold only visible ASCII characters (it goes in an HTTP header)"
        )
    return token


def read_token(token_file: str | Path | None, environ: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """(the token, where it came from); ``--token-file`` wins over the environment variable."""
    environ = os.environ if environ is None else environ
    if token_file is not None:
        path = Path(token_file)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(path, "--token-file", str(path), f"cannot be read ({exc})") from exc
        return check_token(text.strip(), "--token-file", path), "--token-file"
    value = environ.get(TOKEN_VARIABLE, "").strip()
    if value:
        return check_token(value, TOKEN_VARIABLE, None), TOKEN_VARIABLE
    return None, "none"


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` stands for is a loopback address."""
    if host in _WILDCARDS:
        return False
    try:
        infos = socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError) as exc:
        raise InputError(None, "--host", host, f"cannot be resolved ({exc})") from exc
    return all(ipaddress.ip_address(str(info[4][0]).partition("%")[0]).is_loopback for info in infos)


def gate_settings(
    host: str, token: str | None, allowed_hosts: Iterable[str], max_body_mb: float, read_only: bool
) -> GateSettings:
    """Trusted hosts: loopback, the bind address (unless a wildcard) and ``allowed_hosts``."""
    if not 0 < max_body_mb < 1 << 20:  # NaN and inf fail too
        raise InputError(None, "--max-body-mb", max_body_mb, "must be a positive number of MiB (below 1,048,576)")
    names = [*([] if host in _WILDCARDS else [host]), *allowed_hosts]
    return GateSettings.make(token, names, int(max_body_mb * (1 << 20)), read_only)


def reload_logged(recommender: Recommender) -> None:
    """A reload whose outcome is logged (SIGHUP has no one to answer)."""
    try:
        result = recommender.reload()
    except ServiceError as exc:
        log.error("reload refused: %s", exc.problem)
        return
    log.info(
        "reloaded on SIGHUP: model %s (%s from %s, was %s), %d items in the catalogue, %.2f s",
        result["model_id"],
        result["model"],
        recommender.model_dir,
        result["previous_model_id"],
        result["catalogue_size"],
        result["seconds"],
    )


def serve(
    model_dir: str | Path,
    data_dir: str | Path,
    db_path: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    index: str = "exact",
    vbpr_fold_in: bool = False,
    log_level: str = "info",
    token_file: str | Path | None = None,
    allowed_hosts: Iterable[str] = (),
    max_body_mb: float = 1.0,
    read_only: bool = False,
    select_model: Callable[[Path], Path] | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Check the settings, load everything, then run the service on uvicorn until interrupted."""
    import uvicorn
    from threadpoolctl import threadpool_limits

    from curatornet.serving.app import create_app

    token, source = read_token(token_file, environ)
    allowed_hosts = list(allowed_hosts)
    settings = gate_settings(host, token, allowed_hosts, max_body_mb, read_only)
    loopback = is_loopback(host)
    if not loopback and token is None and not read_only:
        raise InputError(
            None,
            "--host",
            host,
            "this address exposes the service beyond this machine, where anyone could change the catalogue: "
            f"set a token ({TOKEN_VARIABLE} or --token-file) or start with --read-only",
        )
    recommender = Recommender(
        model_dir,
        data_dir,
        db_path,
        index=index,
        vbpr_fold_in=vbpr_fold_in,
        read_only=read_only,
        select_model=select_model,
    )
    # Requests run in parallel threads, each a small product: BLAS and OpenMP thread
    # pools per call would only oversubscribe the cores (and spin), so one thread each.
    threadpool_limits(limits=1)
    model = recommender.model
    changes = f"need the token ({source})" if token else "refused (no token)"
    changes = "refused (--read-only)" if read_only else changes
    log.info(
        "serving %s model %s (run %s) from %s: %d items in the catalogue, database %s; changes %s; "
        "trusted hosts %s; body limit %d bytes",
        model.name,
        model.model_id,
        model.run,
        model.run_dir,
        recommender.catalogue_size(),
        recommender.db_path,
        changes,
        ", ".join(sorted(settings.allowed_hosts)),
        settings.max_body,
    )
    if not loopback:
        log.warning(
            "the service is exposed: it listens on %s:%d, beyond this machine; reads are open to anyone who "
            "reaches the port; changes %s; trusted Host names: %s",
            host or "*",
            port,
            changes,
            ", ".join(sorted(settings.allowed_hosts)),
        )
    if "*" in settings.allowed_hosts:
        log.warning("--allowed-host '*': any Host header is trusted (behind a proxy that checks it?)")
    elif not loopback and set(settings.allowed_hosts) <= set(LOOPBACK_HOSTS):
        log.warning("only loopback names are trusted: add the names clients use with --allowed-host")
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP"):
        signal.signal(
            signal.SIGHUP,
            lambda signum, frame: threading.Thread(
                target=reload_logged, args=(recommender,), name="reload", daemon=True
            ).start(),
        )
    try:
        uvicorn.run(create_app(recommender, settings), host=host, port=port, log_level=log_level, access_log=False)
    finally:
        recommender.close()
