"""Helpers of the serving tests: data folders, model directories, a service on loopback, HTTP calls."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from curatornet.data.prepare import prepare_dataset, write_canonical
from curatornet.data.synthetic import generate, parameters_for, write_public_release

REPO = Path(__file__).resolve().parents[1]
DIM = 32
#: The write token of the services the tests start (and that ``call`` sends unless told otherwise).
TEST_TOKEN = "test-token-0123456789abcdef"


def make_data_folder(root: Path, seed: int = 11, dim: int = DIM) -> Path:
    """The tiny generated data set (400 items, 160 users) as the pipeline's data folder."""
    raw = root / "raw"
    write_public_release(generate(parameters_for("tiny", embedding_dim=dim), seed), folder=raw)
    dataset = {
        "format": "synthetic",
        "path": None,
        "embeddings": "synthetic",
        "synthetic": {"preset": "tiny", "scale": 1.0, "embedding_dim": dim},
    }
    data = prepare_dataset(dataset, 0, raw_dir=raw)
    out = root / "data"
    names = ("items.parquet", "embeddings.parquet", "purchases.parquet", "stats.csv")
    write_canonical(data, *(out / name for name in names))
    return out


def write_vbpr_dir(out: Path, embeddings: np.ndarray, n_users: int, seed: int = 0, known: np.ndarray | None = None):
    """A VBPR model directory with random parameters of a trained model's scale (no TensorFlow)."""
    from curatornet.models.features import Standardizer

    rng = np.random.default_rng(seed)
    n_items, dim = embeddings.shape
    out.mkdir(parents=True, exist_ok=True)
    np.savez(
        out / "weights.npz",
        beta_item=rng.normal(0, 0.3, n_items).astype(np.float32),
        gamma_item=rng.normal(0, 0.3, (n_items, 6)).astype(np.float32),
        gamma_user=rng.normal(0, 0.3, (n_users, 6)).astype(np.float32),
        theta_user=rng.normal(0, 0.3, (n_users, 4)).astype(np.float32),
        projection=rng.normal(0, 0.1, (dim, 4)).astype(np.float32),
        beta_visual=rng.normal(0, 0.05, dim).astype(np.float32),
        known_users=np.ones(n_users, bool) if known is None else known,
    )
    Standardizer.fit(embeddings).save(out / "standardizer.npz")
    meta = {
        "model": "vbpr",
        "l2": 1e-3,
        "n_items": n_items,
        "n_users": n_users,
        "embedding_dim": dim,
        "hyperparameters": {"latent_dim": 6, "visual_dim": 4},
        "weights": "weights.npz",
        "standardizer": "standardizer.npz",
        "training": {"seed": seed},
    }
    (out / "model.json").write_text(json.dumps(meta))
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def service_in_thread(recommender, settings=None):
    """The FastAPI app on uvicorn, in a background thread, on a free loopback port; yields the base URL.

    ``settings`` (GateSettings) default: changes need TEST_TOKEN."""
    import uvicorn

    from curatornet.serving.app import create_app
    from curatornet.serving.gate import GateSettings

    settings = settings or GateSettings.make(TEST_TOKEN, read_only=recommender.read_only)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(recommender, settings), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def call(
    method: str,
    url: str,
    body: Any = None,
    raw: bytes | None = None,
    timeout: float = 30,
    token: str | None = TEST_TOKEN,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One HTTP request (with ``Authorization: Bearer <token>`` unless ``token`` is None); returns
    (status, decoded JSON body, or text when not JSON)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    sent = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, data=data, method=method, headers={**sent, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload.decode(errors="replace")


#: Starts the command line in a Python that switches threads every microsecond (races show up at once).
FAST_SWITCHING = [
    sys.executable,
    "-c",
    "import runpy, sys; sys.setswitchinterval(1e-6); sys.argv[0] = 'curatornet'; "
    "runpy.run_module('curatornet', run_name='__main__', alter_sys=True)",
]


def service_command(
    args: list[str],
    port: int,
    log_level: str = "warning",
    prefix: list[str] | None = None,
    python: list[str] | None = None,
) -> list:
    """The command line of ``python -m curatornet serve`` (``prefix``: a launcher before it;
    ``python``: what runs the module instead of ``python -m curatornet``)."""
    python = python or [sys.executable, "-m", "curatornet"]
    return [*(prefix or []), *python, "serve", *args, "--port", str(port), "--log-level", log_level]


def service_env(token: str | None = TEST_TOKEN, **extra: str) -> dict[str, str]:
    """The environment of a service process: this checkout's sources, the token (or none)."""
    env = {k: v for k, v in os.environ.items() if k != "CURATORNET_API_TOKEN"}
    env["PYTHONPATH"] = str(REPO / "src")
    if token is not None:
        env["CURATORNET_API_TOKEN"] = token
    return {**env, **extra}


def start_service_process(
    args: list[str],
    port: int,
    log: Path,
    token: str | None = TEST_TOKEN,
    log_level: str = "warning",
    prefix: list[str] | None = None,
    python: list[str] | None = None,
) -> subprocess.Popen:
    """``python -m curatornet serve ...`` in a child process (changes need ``token``); returns once
    /health answers. ``prefix``, ``python``: as in :func:`service_command`."""
    handle = open(log, "ab")  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen(
        service_command(args, port, log_level, prefix, python),
        stdout=handle,
        stderr=subprocess.STDOUT,
        env=service_env(token),
    )
    process.log_handle = handle
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"service exited with {process.returncode}: {log.read_text()}")
        try:
            if call("GET", f"http://127.0.0.1:{port}/health", timeout=2)[0] == 200:
                return process
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"service did not answer: {log.read_text()}")
        time.sleep(0.1)


def stop(process: subprocess.Popen, kill: bool = False) -> None:
    if kill:
        process.kill()  # a crash: no clean shutdown
    else:
        process.terminate()
    process.wait(timeout=30)
    process.log_handle.close()


def exchange(
    method: str,
    url: str,
    body: Any = None,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    token: str | None = TEST_TOKEN,
    timeout: float = 30,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request with http.client (any Host header); returns (status, headers in lower case, body bytes)."""
    parsed = urllib.parse.urlsplit(url)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    sent = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    sent.update(headers or {})
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    try:
        connection.putrequest(
            method, parsed.path + (f"?{parsed.query}" if parsed.query else ""), skip_host="Host" in sent
        )
        for name, value in sent.items():
            connection.putheader(name, value)
        if data is not None:
            connection.putheader("Content-Length", str(len(data)))
        connection.endheaders(data)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def private_mounts(script: str) -> list[str]:
    """A launcher that runs ``script`` (mounts) in a private mount namespace, then the command:
    the mounts vanish with the process. Skips the test where namespaces are not allowed."""
    for namespace in (
        ["unshare", "--mount", "--propagation", "private"],
        ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"],
    ):
        try:
            probe = subprocess.run(
                [*namespace, "mount", "-t", "tmpfs", "tmpfs", "/mnt"], capture_output=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return [*namespace, "sh", "-c", f'{script} && exec "$@"', "sh"]
    import pytest

    pytest.skip("needs a private mount namespace (unshare) to make a read-only or a full file system")
