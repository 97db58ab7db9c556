"""The recommendation service over real HTTP on loopback: every endpoint, bad input, restarts, parallel writers."""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from serving_helpers import (
    call,
    free_port,
    make_data_folder,
    service_in_thread,
    start_service_process,
    stop,
    write_vbpr_dir,
)

from curatornet.errors import InputError
from curatornet.models.base import Queries
from curatornet.serving.data import load_data
from curatornet.serving.models import load_numpy_scorer, write_untrained_curatornet
from curatornet.serving.recommender import Recommender, WouldWait
from curatornet.serving.topk import batch_top_k, load_batch_scorer


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The tiny generated data folder and an (untrained) CuratorNet made for its catalogue."""
    root = tmp_path_factory.mktemp("service")
    data_dir = make_data_folder(root)
    data = load_data(data_dir)
    write_untrained_curatornet(
        root / "model", data.embeddings, (48, 32), (64, 32, 32), seed=4, item_ids=list(data.item_ids)
    )
    return root, data_dir, data


@pytest.fixture
def service(world, tmp_path):
    """A fresh service (its own database) in a thread; yields (base URL, recommender)."""
    root, data_dir, _ = world
    recommender = Recommender(root / "model", data_dir, tmp_path / "catalogue.sqlite")
    with service_in_thread(recommender) as url:
        yield url, recommender
    recommender.close()


def ids_of(body):
    return [item["item_id"] for item in body["items"]]


def inventory_ids(data):
    return {data.item_ids[i] for i in data.inventory()}


def assert_error(status, body, expected_status, field, value=None):
    assert status == expected_status, (status, body)
    assert body["error"]["field"] == field, body
    if value is not None:
        assert body["error"]["value"] == value, body
    assert body["error"]["problem"], body


def test_health_names_model_training_hash_and_catalogue_size(world, service):
    root, _, data = world
    url, _ = service
    status, body = call("GET", f"{url}/health")
    assert status == 200
    training = json.loads((root / "model" / "model.json").read_text())["training"]
    canonical = json.dumps(training, sort_keys=True, separators=(",", ":"))
    assert body["training_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert len(body["model_id"]) == 16 and body["changes"] == "token"
    assert body["model"] == "curatornet" and body["index"] == "exact"
    sold = set(data.item_ids[data.history_items]) & set(data.item_ids[data.one_of_a_kind])
    assert 0 < len(sold) and body["catalogue_size"] == data.n_items - len(sold)


def test_cold_start_ranks_the_catalogue_without_the_profile(world, service):
    _, _, data = world
    url, _ = service
    profile = [data.item_ids[i] for i in (3, 50, 77)]
    status, body = call("POST", f"{url}/recommendations", {"items": profile, "k": 20})
    assert status == 200 and len(body["items"]) == 20
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True)
    # The scores are the model's: the NumPy scorer on the same profile agrees.
    scorer = load_numpy_scorer(world[0] / "model", data.embeddings)
    position = {item_id: k for k, item_id in enumerate(data.item_ids)}
    expected = scorer.score(Queries(np.array([-1]), [np.array([3, 50, 77])]), [position[i] for i in ids_of(body)])[0]
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    artists = {item["item_id"]: item["artist_id"] for item in body["items"]}
    assert all(artists[i] == data.artist_ids[position[i]] for i in artists)
    # With k past the catalogue size the candidates are exactly the catalogue minus the profile.
    status, body = call("POST", f"{url}/recommendations", {"items": profile, "k": 1000})
    assert status == 200 and set(ids_of(body)) == inventory_ids(data) - set(profile)


def test_known_user_gets_the_batch_top_k_without_their_purchases(world, service):
    root, data_dir, data = world
    url, _ = service
    user = int(np.argmax(np.diff(data.history_offsets)))  # the longest history
    user_id = data.user_ids[user]
    status, body = call("GET", f"{url}/users/{user_id}/recommendations?k=15")
    assert status == 200 and len(body["items"]) == 15
    assert not set(ids_of(body)) & set(data.item_ids[data.history(user)])
    batch = batch_top_k(load_batch_scorer(root / "model", data), data, 15)
    assert ids_of(body) == batch.loc[batch["user_id"] == user_id, "item_id"].tolist()


def test_new_item_is_a_candidate_at_once_and_can_be_liked(world, service):
    _, _, data = world
    url, _ = service
    twin = int(data.inventory()[0])  # the new upload has the same image as this item
    status, body = call(
        "PUT", f"{url}/items/new-1", {"embedding": data.embeddings[twin].tolist(), "artist_id": "newbie"}
    )
    assert status == 201 and body == {"item_id": "new-1", "catalogue_size": len(inventory_ids(data)) + 1}
    profile = [data.item_ids[i] for i in (3, 50)]
    status, body = call("POST", f"{url}/recommendations", {"items": profile, "k": 1000})
    scores = {item["item_id"]: item["score"] for item in body["items"]}
    assert "new-1" in scores and math.isclose(scores["new-1"], scores[data.item_ids[twin]], rel_tol=1e-5)
    # A new item can be a profile: same image, same recommendations as its twin.
    # (Each list holds the other twin at the same rank.)
    status, mine = call("POST", f"{url}/recommendations", {"items": ["new-1"], "k": 10})
    status, theirs = call("POST", f"{url}/recommendations", {"items": [data.item_ids[twin]], "k": 10})
    assert ids_of(mine) == [data.item_ids[twin] if i == "new-1" else i for i in ids_of(theirs)]
    status, body = call("GET", f"{url}/items/new-1/similar?k=1")
    assert ids_of(body) == [data.item_ids[twin]] and math.isclose(body["items"][0]["score"], 1.0, rel_tol=1e-5)


def test_removed_item_is_never_recommended_again(world, service):
    _, _, data = world
    url, _ = service
    profile = [data.item_ids[i] for i in (3, 50)]
    status, body = call("POST", f"{url}/recommendations", {"items": profile, "k": 5})
    top = ids_of(body)[0]
    status, body = call("DELETE", f"{url}/items/{top}")
    assert status == 200 and body == {"item_id": top, "catalogue_size": len(inventory_ids(data)) - 1}
    status, body = call("POST", f"{url}/recommendations", {"items": profile, "k": 1000})
    assert set(ids_of(body)) == inventory_ids(data) - {top} - set(profile)
    for user_id in data.user_ids[:20]:
        assert top not in ids_of(call("GET", f"{url}/users/{user_id}/recommendations?k=50")[1])
    assert top not in ids_of(call("GET", f"{url}/items/{data.item_ids[3]}/similar?k=1000")[1])
    assert call("GET", f"{url}/health")[1]["catalogue_size"] == len(inventory_ids(data)) - 1
    # Still an item someone may like: it can be part of a profile.
    assert call("POST", f"{url}/recommendations", {"items": [top]})[0] == 200
    assert_error(*call("DELETE", f"{url}/items/{top}"), 404, "item_id", top)


def test_similar_items_by_cosine_of_item_vectors(world, service):
    root, _, data = world
    url, _ = service
    query = int(data.inventory()[5])
    status, body = call("GET", f"{url}/items/{data.item_ids[query]}/similar")
    assert status == 200 and len(body["items"]) == 10
    vectors = load_numpy_scorer(root / "model", data.embeddings).item_matrix()
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = unit @ unit[query]
    candidates = np.setdiff1d(data.inventory(), [query])
    best = candidates[np.argsort(-cosine[candidates], kind="stable")[:10]]
    assert ids_of(body) == [data.item_ids[i] for i in best]
    np.testing.assert_allclose([i["score"] for i in body["items"]], cosine[best], rtol=1e-5)


def test_openapi_documentation(service):
    url, _ = service
    status, spec = call("GET", f"{url}/openapi.json")
    assert status == 200
    assert {"/recommendations", "/users/{user_id}/recommendations", "/items/{item_id}", "/health"} <= set(spec["paths"])
    assert "/items/{item_id}/similar" in spec["paths"]
    # No /docs page: its scripts would come from a CDN; the OpenAPI document is served alone.
    assert_error(*call("GET", f"{url}/docs"), 404, "path", "GET /docs")


def bad_requests(data):
    known = data.item_ids[0]
    sold = data.item_ids[np.flatnonzero(data.sold_one_of_a_kind())[0]]
    embedding = [0.5] * 32
    with_nan = b'{"embedding": [' + b"0.5, " * 20 + b"NaN" + b", 0.5" * 11 + b"]}"  # json.loads reads NaN
    return [
        ("POST", "/recommendations", {"items": ["nope", known]}, 422, "items", ["nope"]),
        ("POST", "/recommendations", {"items": []}, 422, "items", []),
        ("POST", "/recommendations", {"items": [known], "k": 0}, 422, "k", 0),
        ("POST", "/recommendations", {"items": [known], "k": -3}, 422, "k", -3),
        ("POST", "/recommendations", {"items": [known], "k": 10**6}, 422, "k", 10**6),
        ("POST", "/recommendations", {"items": known}, 422, "items", known),
        ("POST", "/recommendations", {"items": [known], "colour": "red"}, 422, "colour", "red"),
        ("POST", "/recommendations", {}, 422, "items", None),
        ("POST", "/recommendations", b'{"items": [', 400, "body", None),
        ("GET", "/users/nobody/recommendations", None, 404, "user_id", "nobody"),
        ("GET", f"/users/{data.user_ids[0]}/recommendations?k=0", None, 422, "k", "0"),
        ("GET", f"/users/{data.user_ids[0]}/recommendations?k=many", None, 422, "k", "many"),
        ("PUT", "/items/x1", {"embedding": [0.5] * 31}, 422, "embedding", 31),
        ("PUT", "/items/x1", {"embedding": [0.5] * 33}, 422, "embedding", 33),
        ("PUT", "/items/x1", with_nan, 422, "embedding.20", "nan"),
        ("PUT", "/items/x1", b'{"embedding": [Infinity' + b", 0.5" * 31 + b"]}", 422, "embedding.0", "inf"),
        ("PUT", "/items/x1", {"embedding": ["a"] + [0.5] * 31}, 422, "embedding.0", "a"),
        ("PUT", "/items/x1", {"embedding": []}, 422, "embedding", []),
        ("PUT", f"/items/{known}", {"embedding": embedding}, 409, "item_id", known),
        ("PUT", f"/items/{sold}", {"embedding": embedding}, 409, "item_id", sold),
        ("DELETE", "/items/nope", None, 404, "item_id", "nope"),
        ("DELETE", f"/items/{sold}", None, 404, "item_id", sold),
        ("GET", "/items/nope/similar", None, 404, "item_id", "nope"),
        ("GET", f"/items/{known}/similar?k=0", None, 422, "k", "0"),
        ("GET", "/nowhere", None, 404, "path", "GET /nowhere"),
    ]


def test_bad_input_gets_a_4xx_naming_field_and_value(world, service):
    _, _, data = world
    url, recommender = service
    size = recommender.catalogue_size()
    for method, path, body, status, field, value in bad_requests(data):
        raw = body if isinstance(body, bytes) else None
        got_status, got = call(method, url + path, None if raw else body, raw=raw)
        assert_error(got_status, got, status, field, value)
    assert recommender.catalogue_size() == size  # nothing changed


def test_a_vbpr_model_refuses_new_users_unless_folding_in(world, tmp_path):
    root, data_dir, data = world
    write_vbpr_dir(tmp_path / "vbpr", data.embeddings, data.n_users, known=np.arange(data.n_users) != 1)
    profile = {"items": [data.item_ids[i] for i in (3, 50)], "k": 5}
    refusing = Recommender(tmp_path / "vbpr", data_dir, tmp_path / "a.sqlite")
    with service_in_thread(refusing) as url:
        status, body = call("POST", f"{url}/recommendations", profile)
        assert_error(status, body, 422, "items")
        assert "VBPR" in body["error"]["problem"] and "--vbpr-fold-in" in body["error"]["problem"]
        assert call("GET", f"{url}/users/{data.user_ids[0]}/recommendations")[0] == 200
        status, body = call("GET", f"{url}/users/{data.user_ids[1]}/recommendations")  # no trained factors
        assert_error(status, body, 422, "user_id", data.user_ids[1])
    refusing.close()
    folding = Recommender(tmp_path / "vbpr", data_dir, tmp_path / "b.sqlite", vbpr_fold_in=True)
    with service_in_thread(folding) as url:
        status, first = call("POST", f"{url}/recommendations", profile)
        assert status == 200 and len(first["items"]) == 5
        assert call("POST", f"{url}/recommendations", profile)[1] == first  # seeded: the same answer
        assert call("GET", f"{url}/users/{data.user_ids[1]}/recommendations")[0] == 200
        assert call("GET", f"{url}/health")[1]["vbpr_fold_in"] is True
    folding.close()


def test_faiss_index_serves_adds_and_removes(world, tmp_path):
    pytest.importorskip("faiss", reason="faiss-cpu not installed (pip install -e .[index])")
    root, data_dir, data = world
    exact = Recommender(root / "model", data_dir, tmp_path / "exact.sqlite")
    approximate = Recommender(root / "model", data_dir, tmp_path / "faiss.sqlite", index="faiss")
    profile = [data.item_ids[i] for i in (3, 50, 77)]
    with service_in_thread(approximate) as url:
        assert call("GET", f"{url}/health")[1]["index"] == "faiss"
        status, body = call("POST", f"{url}/recommendations", {"items": profile, "k": 20})
        truth = [r.item_id for r in exact.recommend_for_items(profile, 20)]
        assert status == 200 and len(set(ids_of(body)) & set(truth)) >= 18  # recall@20 ≥ 0.9
        assert not set(ids_of(body)) & set(profile)
        assert call("DELETE", f"{url}/items/{ids_of(body)[0]}")[0] == 200
        twin = data.embeddings[data.item_ids.tolist().index(ids_of(body)[1])]
        assert call("PUT", f"{url}/items/fresh", {"embedding": twin.tolist()})[0] == 201
        status, after = call("POST", f"{url}/recommendations", {"items": profile, "k": 20})
        assert ids_of(body)[0] not in ids_of(after) and "fresh" in ids_of(after)
    exact.close()
    approximate.close()


def test_changes_survive_a_crash_and_restart(world, tmp_path):
    root, data_dir, data = world
    db = tmp_path / "store" / "catalogue.sqlite"
    args = ["--model", str(root / "model"), "--data", str(data_dir), "--db", str(db)]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_service_process(args, port, tmp_path / "service.log")
    base_gone = data.item_ids[data.inventory()[0]]
    try:
        for k in range(3):
            vector = (data.embeddings[k] + 0.1).tolist()
            assert call("PUT", f"{url}/items/added-{k}", {"embedding": vector, "one_of_a_kind": k != 1})[0] == 201
        assert call("DELETE", f"{url}/items/added-0")[0] == 200
        assert call("DELETE", f"{url}/items/{base_gone}")[0] == 200
        size = call("GET", f"{url}/health")[1]["catalogue_size"]
        before = call("POST", f"{url}/recommendations", {"items": ["added-0"], "k": 1000})[1]
    finally:
        stop(process, kill=True)  # no clean shutdown
    process = start_service_process(args, port, tmp_path / "service.log")
    try:
        assert call("GET", f"{url}/health")[1]["catalogue_size"] == size == len(inventory_ids(data)) + 3 - 2
        status, after = call("POST", f"{url}/recommendations", {"items": ["added-0"], "k": 1000})
        assert status == 200 and ids_of(after) == ids_of(before)
        np.testing.assert_allclose(
            [i["score"] for i in after["items"]], [i["score"] for i in before["items"]], rtol=1e-5, atol=1e-6
        )
        assert {"added-1", "added-2"} <= set(ids_of(after))
        assert not {"added-0", base_gone} & set(ids_of(after))
        assert_error(*call("PUT", f"{url}/items/added-0", {"embedding": [0.0] * 32}), 409, "item_id", "added-0")
    finally:
        stop(process)
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_parallel_writers_leave_a_consistent_database(world, service, tmp_path):
    root, data_dir, data = world
    url, recommender = service
    inventory = [data.item_ids[i] for i in data.inventory()]
    rng = np.random.default_rng(0)
    vectors = data.embeddings[rng.integers(0, data.n_items, 64)] + 0.01

    def put(k):
        return call("PUT", f"{url}/items/p{k}", {"embedding": vectors[k].tolist()})[0]

    def contested_put(attempt):  # eight threads race for the same id: exactly one wins
        return call("PUT", f"{url}/items/contested", {"embedding": vectors[0].tolist()})[0]

    def delete(item_id):
        return call("DELETE", f"{url}/items/{item_id}")[0]

    def read(_):
        return call("POST", f"{url}/recommendations", {"items": [inventory[0]], "k": 50})[0]

    start = threading.Barrier(16)  # the first 16 tasks start together

    def job(task):
        timing, kind, argument = task
        if timing == "sync":
            start.wait()
        return kind, {"put": put, "contested": contested_put, "delete": delete, "read": read}[kind](argument)

    tasks = [("sync", "contested", a) for a in range(8)] + [("sync", "delete", inventory[1])] * 8
    tasks += [("free", "put", k) for k in range(64)] + [("free", "delete", i) for i in inventory[2:34]]
    tasks += [("free", "read", k) for k in range(32)]
    order = rng.permutation(len(tasks) - 16) + 16
    tasks = tasks[:16] + [tasks[i] for i in order]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(job, tasks))
    statuses = {}
    for kind, status in results:
        statuses.setdefault(kind, []).append(status)
    assert sorted(statuses["contested"]) == [201] + [409] * 7
    assert sorted(statuses["delete"]) == [200] * 33 + [404] * 7  # inventory[1] removed once, 7 refusals
    assert statuses["put"] == [201] * 64 and statuses["read"] == [200] * 32
    expected = set(inventory) - set(inventory[1:34]) | {f"p{k}" for k in range(64)} | {"contested"}
    assert recommender.catalogue_size() == len(expected)
    assert recommender.store.integrity() == "ok"
    with sqlite3.connect(recommender.db_path) as connection:
        assert connection.execute("SELECT COUNT(*) FROM added_items").fetchone()[0] == 65
        assert connection.execute("SELECT COUNT(*) FROM removed_items").fetchone()[0] == 33
    # A restart from the database sees exactly this catalogue.
    again = Recommender(root / "model", data_dir, recommender.db_path)
    served = {r.item_id for r in again.recommend_for_items([inventory[0]], 1000)}
    assert served == expected - {inventory[0]}
    again.close()


def test_a_change_asked_not_to_wait_changes_nothing_while_a_lock_is_held(world, tmp_path):
    root, data_dir, data = world
    recommender = Recommender(root / "model", data_dir, tmp_path / "catalogue.sqlite")
    item = [data.item_ids[i] for i in data.inventory()][0]
    embedding = (data.embeddings[3] + 0.01).tolist()
    size = recommender.catalogue_size()
    try:
        # Another process's writer holds the database: refused at once, not after lock_wait.
        holder = sqlite3.connect(recommender.db_path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(WouldWait):
            recommender.add_item("new", embedding, wait=False)
        with pytest.raises(WouldWait):
            recommender.remove_item(item, wait=False)
        holder.execute("ROLLBACK")
        holder.close()
        # Another change (or a reload) holds the write lock.
        with recommender._write_lock, pytest.raises(WouldWait):
            recommender.add_item("new", embedding, wait=False)
        assert recommender.catalogue_size() == size and recommender.snapshot().find("new") is None
        assert recommender.store.changes().added == [] and recommender.store.changes().removed == []
        # Nothing held: the same calls go through.
        assert recommender.add_item("new", embedding, wait=False) == size + 1
        assert recommender.remove_item(item, wait=False) == size
        assert [a.item_id for a in recommender.store.changes().added] == ["new"]
    finally:
        recommender.close()


def test_a_database_of_another_catalogue_is_refused(world, tmp_path):
    root, data_dir, data = world
    Recommender(root / "model", data_dir, tmp_path / "c.sqlite").close()
    other = make_data_folder(tmp_path / "other", seed=12)
    write_untrained_curatornet(tmp_path / "model", load_data(other).embeddings, (48, 32), (64, 32, 32))
    with pytest.raises(InputError, match="catalogue_fingerprint.*another catalogue"):
        Recommender(tmp_path / "model", other, tmp_path / "c.sqlite")


def test_a_model_of_another_catalogue_is_refused(world, tmp_path):
    root, _, _ = world
    other = make_data_folder(tmp_path, seed=12)
    with pytest.raises(InputError) as caught:
        Recommender(root / "model", other, tmp_path / "d.sqlite")
    assert "items.parquet" in str(caught.value) and "another catalogue" in str(caught.value)


def test_reads_never_see_an_item_half_added(world, tmp_path):
    """The add/similar race: similar items and recommendations in tight loops while items are added,
    threads switching every microsecond; each read works on one snapshot, so none fails."""
    root, data_dir, data = world
    recommender = Recommender(root / "model", data_dir, tmp_path / "race.sqlite")
    item = data.item_ids[data.inventory()[0]]
    size = recommender.catalogue_size()
    errors, done = [], threading.Event()

    def read():
        while not done.is_set():
            try:
                similar = recommender.similar_items(item, 1000)
                listed = recommender.recommend_for_items([item], 1000)
                assert size - 1 <= len(similar) <= len(listed) <= size + 300 - 1
            except Exception as exc:  # any failure is the finding
                errors.append(exc)
                done.set()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    readers = [threading.Thread(target=read) for _ in range(2)]
    try:
        for thread in readers:
            thread.start()
        for k in range(300):
            if done.is_set():
                break
            recommender.add_item(f"race-{k}", data.embeddings[k] + 0.01)
    finally:
        done.set()
        for thread in readers:
            thread.join()
        sys.setswitchinterval(interval)
    assert errors == [] and recommender.catalogue_size() == size + 300
    recommender.close()
