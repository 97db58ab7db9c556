"""Throughput and latency of the recommendation service over HTTP on loopback.

Usage:
    .venv/bin/python benchmarks/bench_service.py [--model DIR --data DIR] [--requests 1600]
        [--concurrency 1 4 16] [--profile 10] [--k 20] [--index exact|faiss]

The goal: p99 <= 20 ms at concurrency 1, and no failed request at any concurrency.

It starts ``python -m curatornet serve`` in a child process on a free
loopback port (its own throw-away SQLite database), waits for /health, then
for each concurrency level sends ``--requests`` POST /recommendations (a
profile of ``--profile`` random catalogue items, k = ``--k``) from that many
client threads, each with its own keep-alive connection, after a warm-up of
100 requests. It prints requests/s, p50 and p99 latency (from sending the
request to reading the whole response) and the number of failed requests
(a status other than 200, or no answer). The client runs on the same cores.

The catalogue the service starts with is the inventory at the end of the
purchase log (about 2,400 of the 7,742 generated items: most are one of a kind
and sold); before timing, every sold item is PUT again under a new id, so that
all 7,742 are candidates (``--inventory-only`` skips this).

Without ``--model``/``--data`` it makes a UGallery-sized world in a temporary
folder: the project's generated data set at its default size (7,742 items of
2,048 dimensions, 2,919 users; curatornet.data.synthetic) and a CuratorNet of
the paper's sizes with the weights Keras starts training from
(curatornet.serving.models.write_untrained_curatornet): the work per request
is that of a trained model, the recommendations are not.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

from curatornet.serving.data import load_data  # noqa: E402

JSON_HEADERS = {"Content-Type": "application/json"}


def make_world(folder: Path) -> tuple[Path, Path]:
    from curatornet.data.prepare import prepare_dataset, write_canonical
    from curatornet.data.synthetic import generate, parameters_for, write_public_release
    from curatornet.serving.models import write_untrained_curatornet

    started = time.perf_counter()
    write_public_release(generate(parameters_for("default"), 42), folder=folder / "raw")
    dataset = {"format": "synthetic", "path": None, "embeddings": "synthetic", "synthetic": {"preset": "default"}}
    data = prepare_dataset(dataset, 42, raw_dir=folder / "raw")
    names = ("items.parquet", "embeddings.parquet", "purchases.parquet", "stats.csv")
    write_canonical(data, *(folder / "data" / name for name in names))
    ids = data.items.sort_values("item")["item_id"].tolist()
    write_untrained_curatornet(folder / "model", data.embeddings, item_ids=ids)
    print(f"made a UGallery-sized data folder and an untrained CuratorNet in {time.perf_counter() - started:.1f} s")
    return folder / "model", folder / "data"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_service(model: Path, data: Path, db: Path, port: int, index: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    command = [sys.executable, "-m", "curatornet", "serve", "--model", str(model), "--data", str(data)]
    command += ["--db", str(db), "--port", str(port), "--index", index, "--log-level", "warning"]
    process = subprocess.Popen(command, stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env)  # noqa: SIM115
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the service exited: {log.read_text()}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health")
            health = json.loads(connection.getresponse().read())
            size = health["catalogue_size"]
            print(f"service up: {health['model']}, {size} items in the catalogue, {health['index']} index")
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the service did not start in 300 s")


def relist_sold_items(port: int, data) -> None:
    """PUT every sold one-of-a-kind item again under a new id, so that the catalogue holds every item."""
    sold = np.flatnonzero(data.sold_one_of_a_kind())
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started, failed = time.perf_counter(), 0
    for item in sold:
        body = {"embedding": data.embeddings[item].tolist(), "artist_id": data.artist_ids[item], "one_of_a_kind": True}
        connection.request("PUT", f"/items/relisted-{data.item_ids[item]}", body=json.dumps(body), headers=JSON_HEADERS)
        response = connection.getresponse()
        response.read()
        failed += response.status != 201
    connection.request("GET", "/health")
    size = json.loads(connection.getresponse().read())["catalogue_size"]
    seconds = time.perf_counter() - started
    print(f"re-listed {len(sold)} sold items with PUT /items in {seconds:.1f} s ({failed} failed): catalogue {size}")


def run_level(port: int, bodies: list[bytes], concurrency: int) -> tuple[np.ndarray, int, float]:
    """Send every body once from ``concurrency`` threads; returns latencies (s), failures, wall time."""
    latencies = np.full(len(bodies), np.nan)
    failures = [0] * concurrency
    next_body = iter(range(len(bodies)))
    lock = threading.Lock()

    def worker(slot: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                k = next(next_body, None)
            if k is None:
                break
            tick = time.perf_counter()
            try:
                connection.request("POST", "/recommendations", body=bodies[k], headers=JSON_HEADERS)
                response = connection.getresponse()
                payload = response.read()
                ok = response.status == 200 and payload.startswith(b'{"items":')
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            latencies[k] = time.perf_counter() - tick
            failures[slot] += not ok
        connection.close()

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, sum(failures), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="trained model directory (default: an untrained CuratorNet)")
    parser.add_argument("--data", type=Path, help="data folder of that model")
    parser.add_argument("--requests", type=int, default=1600, help="requests per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--profile", type=int, default=10, help="items per request profile")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--index", choices=["exact", "faiss"], default="exact")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--inventory-only",
        action="store_true",
        help="keep the catalogue at the inventory of the data (default: re-list sold items, every item a candidate)",
    )
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="bench_service_") as tmp:
        tmp = Path(tmp)
        model, data_dir = (args.model, args.data) if args.model else make_world(tmp)
        data = load_data(data_dir)
        item_ids = data.item_ids
        rng = np.random.default_rng(args.seed)
        total = 100 + args.requests * len(args.concurrency)
        bodies = [
            json.dumps({"items": rng.choice(item_ids, args.profile, replace=False).tolist(), "k": args.k}).encode()
            for _ in range(total)
        ]
        port = free_port()
        process = start_service(model, data_dir, tmp / "catalogue.sqlite", port, args.index, tmp / "service.log")
        try:
            if not args.inventory_only:
                relist_sold_items(port, data)
            _, failed, _ = run_level(port, bodies[:100], 1)  # warm-up
            print(f"warm-up: 100 requests, {failed} failed")
            print(f"{'concurrency':>11}{'requests':>10}{'failed':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
            start = 100
            for concurrency in args.concurrency:
                chunk = bodies[start : start + args.requests]
                start += args.requests
                latencies, failed, wall = run_level(port, chunk, concurrency)
                ms = latencies * 1e3
                p50, p99 = np.nanpercentile(ms, 50), np.nanpercentile(ms, 99)
                print(f"{concurrency:>11}{len(chunk):>10}{failed:>8}{len(chunk) / wall:>9.0f}{p50:>9.2f}{p99:>9.2f}")
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(f"total requests sent: {total}; load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
