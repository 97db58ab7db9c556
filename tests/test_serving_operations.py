"""The service's start-up checks, its database under faults, a model swapped while it serves, and the
add/similar race, over real HTTP to a child process on loopback.

Faults of the file system come from a private mount namespace (``unshare``) around the service: a
read-only bind mount of its database, or a small tmpfs that fills up. They vanish with the process."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import pytest
from serving_helpers import (
    FAST_SWITCHING,
    TEST_TOKEN,
    call,
    exchange,
    free_port,
    make_data_folder,
    private_mounts,
    service_command,
    service_env,
    start_service_process,
    stop,
)

from curatornet.cli import selected_model_dir
from curatornet.serving.data import load_data
from curatornet.serving.models import write_untrained_curatornet
from curatornet.serving.recommender import Recommender
from curatornet.serving.store import CatalogueStore


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("operations")
    data_dir = make_data_folder(root)
    data = load_data(data_dir)
    ids = list(data.item_ids)
    write_untrained_curatornet(root / "model", data.embeddings, (48, 32), (64, 32, 32), seed=4, item_ids=ids)
    return root, data_dir, data


def args_for(world, db, *extra, model=None):
    root, data_dir, _ = world
    return ["--model", str(model or root / "model"), "--data", str(data_dir), "--db", str(db), *extra]


@contextmanager
def running(args, log, **options):
    port = free_port()
    process = start_service_process(args, port, log, **options)
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        stop(process)


def refused_at_start(args, token=TEST_TOKEN, prefix=None) -> str:
    """The one line a service prints when it refuses to start (exit code 2)."""
    try:
        done = subprocess.run(
            service_command(args, free_port(), prefix=prefix),
            env=service_env(token),
            capture_output=True,
            text=True,
            timeout=90,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the service started instead of refusing: {args}")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (done.returncode, done.stderr)
    return lines[0]


def inventory(data):
    return [data.item_ids[i] for i in data.inventory()]


def ids_of(body):
    return [item["item_id"] for item in body["items"]]


def assert_error(status, body, expected_status, field):
    assert status == expected_status, (status, body)
    assert body["error"]["field"] == field and body["error"]["problem"], body


# --------------------------------------------------------------------------- settings refused at start


def test_an_exposed_address_needs_a_token_or_read_only(world, tmp_path):
    line = refused_at_start(args_for(world, tmp_path / "c.sqlite", "--host", "0.0.0.0"), token=None)
    assert "--host" in line and "0.0.0.0" in line and "CURATORNET_API_TOKEN" in line and "--read-only" in line
    line = refused_at_start(args_for(world, tmp_path / "c.sqlite"), token="short")
    assert "CURATORNET_API_TOKEN" in line and "16 characters" in line and "'short'" not in line
    for limit in ("0", "nan", "inf"):
        line = refused_at_start(args_for(world, tmp_path / "c.sqlite", "--max-body-mb", limit))
        assert "--max-body-mb" in line
    assert not (tmp_path / "c.sqlite").exists()  # refused before anything was opened
    # With a token (here from a file) it serves, and says at start that it is exposed.
    token_file = tmp_path / "token"
    token_file.write_text("file-token-abcdefghijklmnop\n")
    args = args_for(world, tmp_path / "c.sqlite", "--host", "0.0.0.0", "--token-file", str(token_file))
    with running(args, tmp_path / "service.log", token=None) as (url, _):
        _, _, data = world
        embedding = data.embeddings[0].tolist()
        assert call("PUT", f"{url}/items/x1", {"embedding": embedding}, token=TEST_TOKEN)[0] == 401
        assert call("PUT", f"{url}/items/x1", {"embedding": embedding}, token="file-token-abcdefghijklmnop")[0] == 201
    log = (tmp_path / "service.log").read_text()
    assert "WARNING" in log and "exposed" in log and "0.0.0.0" in log, log


# --------------------------------------------------------------------------- databases refused at start


def test_databases_that_are_not_this_services_are_refused(world, tmp_path):
    _, _, data = world
    foreign = tmp_path / "shop.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO customers (name) VALUES ('Ada')")
    before = foreign.read_bytes()
    line = refused_at_start(args_for(world, foreign))
    assert "other tables" in line and "customers" in line
    assert foreign.read_bytes() == before  # not adopted, not converted

    made = tmp_path / "made.sqlite"  # a database of this service, with changes
    store = CatalogueStore(made, data.fingerprint, data.embedding_dim)
    for k in range(200):
        store.add_item(f"n{k}", "a", True, data.embeddings[k % 50] + 0.01)
    store.close()
    damaged = tmp_path / "damaged.sqlite"
    content = bytearray(made.read_bytes())
    content[4096 * 3 : 4096 * 6] = np.random.default_rng(0).integers(0, 256, 4096 * 3, dtype=np.uint8).tobytes()
    damaged.write_bytes(bytes(content))
    assert "damaged" in refused_at_start(args_for(world, damaged))
    truncated = tmp_path / "truncated.sqlite"
    truncated.write_bytes(made.read_bytes()[: 4096 * 5])
    assert "damaged" in refused_at_start(args_for(world, truncated))
    text = tmp_path / "notes.sqlite"
    text.write_text("item,vector\n1,2\n" * 100)
    assert "not a usable SQLite database" in refused_at_start(args_for(world, text))

    other = make_data_folder(tmp_path / "other", seed=12)  # the same service's database, another catalogue
    other_data = load_data(other)
    CatalogueStore(tmp_path / "other.sqlite", other_data.fingerprint, other_data.embedding_dim).close()
    assert "another catalogue" in refused_at_start(args_for(world, tmp_path / "other.sqlite"))
    # The sound one is served, with its changes.
    with running(args_for(world, made), tmp_path / "service.log") as (url, _):
        assert call("GET", f"{url}/health")[1]["catalogue_size"] == len(inventory(data)) + 200


def read_only_file(path) -> list[str]:
    return private_mounts(f"mount --bind '{path}' '{path}' && mount -o remount,bind,ro '{path}'")


def test_a_read_only_database_is_refused_unless_read_only(world, tmp_path):
    _, _, data = world
    folder = tmp_path / "store"
    db = folder / "catalogue.sqlite"
    store = CatalogueStore(db, data.fingerprint, data.embedding_dim)
    store.add_item("kept", None, True, data.embeddings[3] + 0.01)
    store.remove_item(inventory(data)[0])
    store.close()
    # The file alone is read-only (its folder is not): SQLite opens it, then could write nothing.
    line = refused_at_start(args_for(world, db), prefix=read_only_file(db))
    assert "cannot be written" in line and "--read-only" in line
    # A read-only folder (no -wal, no -shm), served --read-only: reads, and every change refused.
    prefix = read_only_file(folder)
    with running(args_for(world, db, "--read-only"), tmp_path / "service.log", prefix=prefix) as (url, _):
        health = call("GET", f"{url}/health")[1]
        assert health["read_only"] and health["changes"] == "read-only"
        assert health["catalogue_size"] == len(inventory(data)) + 1 - 1
        listed = ids_of(call("POST", f"{url}/recommendations", {"items": inventory(data)[1:2], "k": 1000})[1])
        assert "kept" in listed and inventory(data)[0] not in listed
        assert_error(*call("PUT", f"{url}/items/x", {"embedding": data.embeddings[0].tolist()}), 403, "read_only")
        assert_error(*call("DELETE", f"{url}/items/kept"), 403, "read_only")


# --------------------------------------------------------------------------- database faults while serving


def test_a_held_lock_answers_503_with_retry_after(world, tmp_path):
    _, _, data = world
    db = tmp_path / "catalogue.sqlite"
    with running(args_for(world, db), tmp_path / "service.log") as (url, _):
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process's writer
        try:
            new = {"embedding": (data.embeddings[5] + 0.01).tolist()}
            with ThreadPoolExecutor(2) as pool:
                put = pool.submit(exchange, "PUT", f"{url}/items/locked", new, timeout=20)
                delete = pool.submit(exchange, "DELETE", f"{url}/items/{inventory(data)[0]}", timeout=20)
                time.sleep(0.5)  # both changes are waiting for the lock (5 s) by now
                # ...and the service goes on answering reads meanwhile: no request waits for a lock on its loop.
                assert call("POST", f"{url}/recommendations", {"items": inventory(data)[:2]})[0] == 200
                assert not put.done() and not delete.done()
                answers = [put.result(), delete.result()]
            for status, headers, payload in answers:
                assert status == 503 and headers["retry-after"].isdigit(), (status, payload)
                assert b'"field":"database"' in payload.replace(b" ", b""), payload
            assert call("POST", f"{url}/recommendations", {"items": inventory(data)[:2]})[0] == 200
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert call("PUT", f"{url}/items/locked", new)[0] == 201  # the refused PUT left nothing behind
        assert call("DELETE", f"{url}/items/{inventory(data)[0]}")[0] == 200


def test_a_full_disk_answers_507_and_reads_go_on(world, tmp_path):
    _, _, data = world
    folder = tmp_path / "small"
    folder.mkdir()
    prefix = private_mounts(f"mount -t tmpfs -o size=160k tmpfs '{folder}'")
    with running(args_for(world, folder / "catalogue.sqlite"), tmp_path / "service.log", prefix=prefix) as (url, _):
        size = call("GET", f"{url}/health")[1]["catalogue_size"]
        statuses = []
        for k in range(400):
            new = {"embedding": (data.embeddings[k % 300] + 0.01).tolist(), "artist_id": "a" * 200}
            status, body = call("PUT", f"{url}/items/fill-{k}", new)
            statuses.append(status)
            if status != 201:
                assert_error(status, body, 507, "database")
                break
        assert statuses[-1] == 507 and set(statuses[:-1]) == {201}, statuses
        # A removal writes less: it may still fit, or not; either way the answer says which.
        status, body = call("DELETE", f"{url}/items/{inventory(data)[0]}")
        assert status == 200 or body["error"]["field"] == "database" and status == 507, (status, body)
        health = call("GET", f"{url}/health")[1]
        acknowledged = len(statuses) - 1 - (status == 200)
        assert health["catalogue_size"] == size + acknowledged  # what was acknowledged, nothing else
        listed = ids_of(call("POST", f"{url}/recommendations", {"items": inventory(data)[:1], "k": 1000})[1])
        assert "fill-0" in listed and f"fill-{len(statuses) - 1}" not in listed


def test_adds_and_similar_items_each_see_one_snapshot(world, tmp_path):
    """Under thread switches every microsecond, similar items never sees an item half added."""
    _, _, data = world
    item = inventory(data)[0]
    args = args_for(world, tmp_path / "catalogue.sqlite")
    with running(args, tmp_path / "service.log", python=FAST_SWITCHING) as (url, _):
        done = threading.Event()

        def similar():
            statuses = []
            while not done.is_set():
                status, body = call("GET", f"{url}/items/{item}/similar?k=1000")
                statuses.append(status)
                if status == 200:
                    scores = [i["score"] for i in body["items"]]
                    assert scores == sorted(scores, reverse=True)
            return statuses

        def add():
            try:
                return [
                    call("PUT", f"{url}/items/race-{k}", {"embedding": (data.embeddings[k] + 0.01).tolist()})[0]
                    for k in range(150)
                ]
            finally:
                done.set()

        with ThreadPoolExecutor(4) as pool:
            readers = [pool.submit(similar) for _ in range(3)]
            writer = pool.submit(add)
            added, read = writer.result(), [s for r in readers for s in r.result()]
        assert added == [201] * 150
        assert len(read) > 0 and set(read) == {200}, sorted(set(read))


# --------------------------------------------------------------------------- a new model without downtime


@pytest.fixture
def models(world, tmp_path):
    """results/models-like folder: two runs of CuratorNet (seeds 0 and 1) and a selection.csv."""
    root, _, data = world
    folder = tmp_path / "models"
    for seed in (0, 1):
        run = folder / "curatornet" / "guidelines" / "l2_0.01" / f"seed_{seed}"
        ids = list(data.item_ids)
        write_untrained_curatornet(run, data.embeddings, (48, 32), (64, 32, 32), seed=10 + seed, item_ids=ids)
    # A run trained on another catalogue, to be refused.
    alien = folder / "curatornet" / "guidelines" / "l2_0.1" / "seed_0"
    write_untrained_curatornet(alien, data.embeddings, (48, 32), (64, 32, 32), item_ids=[f"x{k}" for k in range(400)])
    select(folder, "0.01", 0)
    return folder


def select(folder, l2: str, seed: int) -> None:
    (folder / "selection.csv").write_text(
        "model,sampling,l2,seeds,valid_auc,valid_auc_min,valid_auc_max,selected,best_seed\n"
        f"curatornet,guidelines,{l2},2,0.70,0.69,0.71,True,{seed}\n"
    )


def expected_lists(world, folder, db, profile):
    """What the selected run serves for ``profile`` with the database's changes (read-only, in-process)."""
    _, data_dir, _ = world
    recommender = Recommender(selected_model_dir(folder / "curatornet"), data_dir, db, read_only=True)
    try:
        return [r.item_id for r in recommender.recommend_for_items(profile, 20)], recommender.model.model_id
    finally:
        recommender.close()


def test_a_reload_swaps_the_selected_model_without_downtime(world, models, tmp_path):
    _, _, data = world
    db = tmp_path / "catalogue.sqlite"
    log = tmp_path / "service.log"
    profile = inventory(data)[:3]
    args = args_for(world, db, model=models / "curatornet")
    with running(args, log, log_level="info") as (url, process):
        first = call("GET", f"{url}/health")[1]
        twin = data.embeddings[data.inventory()[10]]
        assert call("PUT", f"{url}/items/uploaded", {"embedding": (twin + 0.01).tolist()})[0] == 201
        assert call("DELETE", f"{url}/items/{inventory(data)[5]}")[0] == 200
        lists = {0: expected_lists(world, models, db, profile)}
        select(models, "0.01", 1)  # a retrain on the same catalogue, selected
        lists[1] = expected_lists(world, models, db, profile)
        assert lists[0][1] == first["model_id"] != lists[1][1]

        assert_error(*call("POST", f"{url}/admin/reload", token=None), 401, "Authorization")
        status, body = call("POST", f"{url}/admin/reload")
        assert status == 200 and body["model_id"] == lists[1][1] and body["previous_model_id"] == first["model_id"]
        health = call("GET", f"{url}/health")[1]
        assert health["model_id"] == lists[1][1] and health["run"]["seed"] == 11
        assert health["catalogue_size"] == first["catalogue_size"] + 1 - 1  # the changes are re-applied
        served = call("POST", f"{url}/recommendations", {"items": profile, "k": 20})[1]
        assert ids_of(served) == lists[1][0]
        everything = ids_of(call("POST", f"{url}/recommendations", {"items": profile, "k": 1000})[1])
        assert "uploaded" in everything and inventory(data)[5] not in everything

        # A model of another catalogue is refused; the one loaded keeps serving.
        select(models, "0.1", 0)
        status, body = call("POST", f"{url}/admin/reload")
        assert_error(status, body, 409, "model")
        assert "another catalogue" in body["error"]["problem"]
        assert call("GET", f"{url}/health")[1]["model_id"] == lists[1][1]
        assert ids_of(call("POST", f"{url}/recommendations", {"items": profile, "k": 20})[1]) == lists[1][0]

        # Reads while the model swaps back and forth: every answer is one model's, whole.
        stop_reading = threading.Event()

        def read():
            answers = []
            while not stop_reading.is_set():
                status, body = call("POST", f"{url}/recommendations", {"items": profile, "k": 20})
                answers.append(ids_of(body) if status == 200 else status)
            return answers

        with ThreadPoolExecutor(3) as pool:
            readers = [pool.submit(read) for _ in range(3)]
            for turn in range(6):
                select(models, "0.01", turn % 2)
                assert call("POST", f"{url}/admin/reload")[0] == 200
            stop_reading.set()
            answers = [a for r in readers for a in r.result()]
        assert answers and all(a in (lists[0][0], lists[1][0]) for a in answers), answers[:3]

        # SIGHUP reloads too (the loop left seed 1 selected; seed 0 now).
        select(models, "0.01", 0)
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while call("GET", f"{url}/health")[1]["model_id"] != lists[0][1]:
            assert time.monotonic() < deadline, "SIGHUP did not reload"
            time.sleep(0.1)
        metrics = call("GET", f"{url}/metrics")[1]
        assert f'model_id="{lists[0][1]}"' in metrics
        assert 'curatornet_model_reloads_total{outcome="refused"} 1.0' in metrics
        assert 'curatornet_model_reloads_total{outcome="done"} 8.0' in metrics
    assert "reloaded on SIGHUP" in log.read_text()


def test_a_reload_that_fails_keeps_the_old_model(world, models, tmp_path):
    """A half-written run (no weights) is refused, by request and by SIGHUP."""
    _, _, data = world
    log = tmp_path / "service.log"
    with running(args_for(world, tmp_path / "c.sqlite", model=models / "curatornet"), log) as (url, process):
        before = call("GET", f"{url}/health")[1]["model_id"]
        run = models / "curatornet" / "guidelines" / "l2_0.01" / "seed_1"
        (run / "weights.npz").unlink()
        select(models, "0.01", 1)
        status, body = call("POST", f"{url}/admin/reload")
        assert_error(status, body, 409, "model")
        assert "weights" in body["error"]["problem"]
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while "reload refused" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert call("GET", f"{url}/health")[1]["model_id"] == before
        assert call("POST", f"{url}/recommendations", {"items": inventory(data)[:2]})[0] == 200
    from curatornet.serving.recommender import load_model

    assert load_model(models / "curatornet" / "guidelines" / "l2_0.01" / "seed_0").model_id == before
