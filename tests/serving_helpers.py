"""Helpers of the serving tests: data folders, model directories, a service on loopback, HTTP calls."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from curatornet.data.prepare import prepare_dataset, write_canonical
from curatornet.data.synthetic import generate, parameters_for, write_public_release

REPO = Path(__file__).resolve().parents[1]
DIM = 32


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
def service_in_thread(recommender):
    """The FastAPI app on uvicorn, in a background thread, on a free loopback port; yields the base URL."""
    import uvicorn

    from curatornet.serving.app import create_app

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(recommender), log_level="warning"))
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


def call(method: str, url: str, body: Any = None, raw: bytes | None = None, timeout: float = 30) -> tuple[int, Any]:
    """One HTTP request; returns (status, decoded JSON body, or text when not JSON)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload.decode(errors="replace")


def start_service_process(args: list[str], port: int, log: Path) -> subprocess.Popen:
    """``python -m curatornet serve ...`` in a child process; returns once /health answers."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    handle = open(log, "ab")  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen(
        [sys.executable, "-m", "curatornet", "serve", *args, "--port", str(port), "--log-level", "warning"],
        stdout=handle,
        stderr=subprocess.STDOUT,
        env=env,
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
