"""The service as a store puts it on its network, over real HTTP to a child process on loopback:
authorised changes, trusted hosts, the body limit, no 5xx on any input, strict types, extreme
embeddings, metrics, the access log, /health without paths and the error shapes in the OpenAPI document."""

from __future__ import annotations

import json
import re
import select
import socket
import time
from contextlib import contextmanager

import pytest
from prometheus_client.parser import text_string_to_metric_families
from serving_helpers import (
    TEST_TOKEN,
    call,
    exchange,
    free_port,
    make_data_folder,
    start_service_process,
    stop,
)

from curatornet.serving.data import load_data
from curatornet.serving.models import write_untrained_curatornet


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("security")
    data_dir = make_data_folder(root)
    data = load_data(data_dir)
    ids = list(data.item_ids)
    write_untrained_curatornet(root / "model", data.embeddings, (48, 32), (64, 32, 32), seed=4, item_ids=ids)
    return root, data_dir, data


@contextmanager
def running(args, log, **options):
    port = free_port()
    process = start_service_process(args, port, log, **options)
    try:
        yield f"http://127.0.0.1:{port}", port, process
    finally:
        stop(process)


@pytest.fixture(scope="module")
def guarded(world, tmp_path_factory):
    """One service with a token and the default limits, logging every request: (url, port, log file)."""
    root, data_dir, _ = world
    folder = tmp_path_factory.mktemp("guarded")
    args = ["--model", str(root / "model"), "--data", str(data_dir), "--db", str(folder / "catalogue.sqlite")]
    with running(args, folder / "service.log", log_level="info") as (url, port, _):
        yield url, port, folder / "service.log"


def assert_error(status, body, expected_status, field, value=None):
    assert status == expected_status, (status, body)
    assert body["error"]["field"] == field, body
    if value is not None:
        assert body["error"]["value"] == value, body
    assert body["error"]["problem"] and body["errors"][0] == body["error"], body


def size_of(url):
    return call("GET", f"{url}/health")[1]["catalogue_size"]


def inventory(data):
    return [data.item_ids[i] for i in data.inventory()]


# --------------------------------------------------------------------------- who may change the catalogue


def test_changes_need_the_token_and_reads_stay_open(world, guarded):
    _, _, data = world
    url, _, _ = guarded
    size = size_of(url)
    embedding = data.embeddings[data.inventory()[0]].tolist()
    changes = [("PUT", "/items/auth-1", {"embedding": embedding}), ("POST", "/admin/reload", None)]
    changes += [("DELETE", f"/items/{item}", None) for item in inventory(data)[:30]]  # an anonymous emptying
    for token in (None, "wrong-token-0123456789", TEST_TOKEN[:-1], TEST_TOKEN + "x"):
        for method, path, body in changes:
            assert_error(*call(method, url + path, body, token=token), 401, "Authorization")
    for scheme in (f"Basic {TEST_TOKEN}", "Bearer", f"Token {TEST_TOKEN}"):
        status, headers, payload = exchange("DELETE", f"{url}/items/{inventory(data)[0]}", None, token=None,
                                            headers={"Authorization": scheme})  # fmt: skip
        assert status == 401 and headers["www-authenticate"].startswith("Bearer"), (status, payload)
        assert TEST_TOKEN not in payload.decode()  # the token is never echoed
    assert size_of(url) == size
    assert call("GET", f"{url}/items/auth-1/similar")[0] == 404  # nothing was added
    # Reads need no token.
    profile = {"items": inventory(data)[:2], "k": 5}
    assert call("POST", f"{url}/recommendations", profile, token=None)[0] == 200
    assert call("GET", f"{url}/users/{data.user_ids[0]}/recommendations", token=None)[0] == 200
    assert call("GET", f"{url}/items/{inventory(data)[0]}/similar", token=None)[0] == 200
    for path in ("/health", "/metrics", "/openapi.json"):
        assert call("GET", url + path, token=None)[0] == 200, path
    # With the token, changes go through.
    assert call("PUT", f"{url}/items/auth-1", {"embedding": embedding})[0] == 201
    assert call("DELETE", f"{url}/items/auth-1")[0] == 200
    assert size_of(url) == size


def test_a_service_without_a_token_serves_reads_and_refuses_changes(world, tmp_path):
    root, data_dir, data = world
    args = ["--model", str(root / "model"), "--data", str(data_dir), "--db", str(tmp_path / "c.sqlite")]
    args += ["--allowed-host", "shop.example"]
    with running(args, tmp_path / "service.log", token=None) as (url, _, _):
        for method, path, body in [
            ("PUT", "/items/x1", {"embedding": data.embeddings[0].tolist()}),
            ("DELETE", f"/items/{inventory(data)[0]}", None),
            ("POST", "/admin/reload", None),
        ]:
            status, body = call(method, url + path, body, token=TEST_TOKEN)  # no token is configured
            assert_error(status, body, 403, "CURATORNET_API_TOKEN")
            assert "--token-file" in body["error"]["problem"]
        assert call("POST", f"{url}/recommendations", {"items": inventory(data)[:1]})[0] == 200
        health = call("GET", f"{url}/health")[1]
        assert health["changes"] == "disabled" and health["catalogue_size"] == len(inventory(data))
        # --allowed-host adds a trusted name.
        assert exchange("GET", f"{url}/health", headers={"Host": "shop.example:8000"})[0] == 200
        assert exchange("GET", f"{url}/health", headers={"Host": "other.example"})[0] == 400


def test_only_trusted_host_names_are_served(world, guarded):
    _, _, data = world
    url, port, _ = guarded
    embedding = data.embeddings[0].tolist()
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.2", "localhost.evil.example", ""):
        for method, path, body in [
            ("GET", "/health", None),
            ("POST", "/recommendations", {"items": inventory(data)[:1]}),
            ("PUT", "/items/rebound", {"embedding": embedding}),  # with the right token
        ]:
            status, _, payload = exchange(method, url + path, body, headers={"Host": host})
            assert_error(status, json.loads(payload), 400, "Host", host)
    for host in (f"127.0.0.1:{port}", "localhost", f"LOCALHOST:{port}", f"[::1]:{port}", "localhost."):
        assert exchange("GET", f"{url}/health", headers={"Host": host})[0] == 200, host
    # HTTP/1.0 without any Host header
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        answer = receive_all(sock)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert call("GET", f"{url}/items/rebound/similar")[0] == 404


# --------------------------------------------------------------------------- how much a client may send


def receive_all(sock) -> bytes:
    """One answer: until its Content-Length is in, or the connection ends (a reset after the
    answer is the service closing a connection whose upload it did not read)."""
    data = b""
    while True:
        head, found, body = data.partition(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length: *(\d+)", head) if found else None
        if length and len(body) >= int(length.group(1)):
            return data
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def response_of(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_body_over_the_limit_is_refused_before_it_is_read(world, guarded):
    _, _, data = world
    url, port, _ = guarded
    size = size_of(url)
    for method, path in (("PUT", "/items/huge"), ("POST", "/recommendations")):
        # 100 MB announced, 1 KB sent: the answer comes without the rest of the body.
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TEST_TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {100 * 2**20}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(head + b"[" * 1024)
            status, body = response_of(receive_all(sock))
        assert_error(status, body, 413, "body", f"{100 * 2**20} bytes")
    # A chunked body (no length announced) is cut off once it passes the limit.
    head = (
        f"PUT /items/huge HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TEST_TOKEN}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        sent = 0
        while not select.select([sock], [], [], 0)[0]:
            assert sent < 8 * 2**20, "no answer after 8 MiB"
            try:
                sock.sendall(chunk)
            except OSError:  # the service closed the connection after answering
                break
            sent += 65536
        status, body = response_of(receive_all(sock))
    assert_error(status, body, 413, "body")  # never answered on an endless upload without the limit
    assert size_of(url) == size
    # A body just under the limit is served.
    padded = json.dumps({"items": inventory(data)[:1], "k": 3}).encode() + b" " * (2**20 - 100)
    status, body = call("POST", f"{url}/recommendations", raw=padded)
    assert status == 200 and len(body["items"]) == 3


# --------------------------------------------------------------------------- no 5xx from any request


def strictly_utf8_json(payload: bytes):
    return json.loads(payload.decode("utf-8", "strict"))


def test_lone_surrogates_get_a_clean_4xx(world, guarded):
    _, _, data = world
    url, _, _ = guarded
    size = size_of(url)
    embedding = json.dumps(data.embeddings[0].tolist())
    cases = [
        ("POST", "/recommendations", b'{"items": ["\\ud800"]}', "items.0", "\\ud800"),
        ("POST", "/recommendations", b'{"items": ["a\\udfff", "b"]}', "items.0", "a\\udfff"),
        ("POST", "/recommendations", b'{"items": ["\xed\xa0\x80"]}', "items.0", "\\ud800"),  # encoded in UTF-8
        ("POST", "/recommendations", b'{"\\ud800": ["x"], "items": ["x"]}', None, None),
        ("PUT", "/items/s1", b'{"artist_id": "\\udc00", "embedding": ' + embedding.encode() + b"}", "artist_id", None),
    ]
    for method, path, raw, field, value in cases:
        status, _, payload = exchange(method, url + path, raw=raw)
        body = strictly_utf8_json(payload)
        assert 400 <= status < 500, (status, payload)
        if field is not None:
            assert_error(status, body, 422, field, value)
            assert "surrogate" in body["error"]["problem"]
    assert size_of(url) == size


def test_a_body_that_cannot_be_parsed_names_the_body(world, guarded):
    _, _, data = world
    url, _, _ = guarded
    known = json.dumps(inventory(data)[0]).encode()
    for raw in (
        b"[" * 100_000 + b"]" * 100_000,  # nested 100,000 deep
        b'{"items": [' + known + b'], "k": ' + b"7" * 5000 + b"}",  # a 5,000-digit k
        b'{"items": ["\xff\xfe"]}',  # not UTF-8
        b'{"items": [' + known,  # cut off
        b"{'items': []}",  # not JSON
    ):
        status, body = call("POST", f"{url}/recommendations", raw=raw)
        assert_error(status, body, 400, "body")


def test_types_are_strict(world, guarded):
    _, _, data = world
    url, _, _ = guarded
    known = inventory(data)[:2]
    embedding = data.embeddings[data.inventory()[3]].tolist()
    size = size_of(url)
    for k in (True, False, "5", 5.0, 2.5, None, [5], {"k": 5}):
        assert_error(*call("POST", f"{url}/recommendations", {"items": known, "k": k}), 422, "k", k)
    for flag in ("yes", "true", 1, 0, None):
        new = {"embedding": embedding, "one_of_a_kind": flag}
        assert_error(*call("PUT", f"{url}/items/typed", new), 422, "one_of_a_kind", flag)
    for bad in ("0.5", True, None, [0.5]):
        values = [bad] + embedding[1:]
        assert_error(*call("PUT", f"{url}/items/typed", {"embedding": values}), 422, "embedding.0", bad)
    assert_error(*call("PUT", f"{url}/items/typed", {"embedding": embedding, "artist_id": 17}), 422, "artist_id", 17)
    assert size_of(url) == size
    # The right types are served: integers are numbers, JSON numbers are item ids.
    assert call("POST", f"{url}/recommendations", {"items": known, "k": 5})[0] == 200
    assert call("PUT", f"{url}/items/typed", {"embedding": embedding, "one_of_a_kind": False})[0] == 201
    assert call("DELETE", f"{url}/items/typed")[0] == 200


def test_embeddings_far_outside_the_catalogue_are_refused(world, guarded):
    _, _, data = world
    url, _, _ = guarded
    size = size_of(url)
    existing = data.embeddings[data.inventory()[7]]
    for name, values in [
        ("3e38", [3e38] * 32),  # finite in float32, then an infinite vector
        ("minus", [-3e38] * 32),
        ("100x", (existing * 100).tolist()),  # a finite vector far longer than any item's
        ("1e39", [1e39] + existing[1:].tolist()),  # not even a float32
    ]:
        status, body = call("PUT", f"{url}/items/extreme-{name}", {"embedding": values})
        assert status == 422 and body["error"]["field"].startswith("embedding"), (name, status, body)
    big = b'{"embedding": [' + b"1" * 400 + b"".join(b", 0.5" for _ in range(31)) + b"]}"
    assert_error(*call("PUT", f"{url}/items/extreme-int", raw=big), 422, "embedding.0")
    assert size_of(url) == size
    profile = {"items": inventory(data)[:2], "k": 1000}
    assert not {i["item_id"] for i in call("POST", f"{url}/recommendations", profile)[1]["items"]} & {
        f"extreme-{name}" for name in ("3e38", "minus", "100x", "1e39", "int")
    }
    # An embedding of the catalogue's range is taken, and listed.
    near = (existing * 1.05 + 0.01).tolist()
    assert call("PUT", f"{url}/items/ordinary", {"embedding": near})[0] == 201
    listed = [i["item_id"] for i in call("POST", f"{url}/recommendations", profile)[1]["items"]]
    assert "ordinary" in listed and len(listed) == size + 1 - 2


def test_no_request_gets_a_5xx(world, guarded):
    _, _, data = world
    url, _, _ = guarded
    known, user = inventory(data)[0], data.user_ids[0]
    requests = [
        ("PATCH", f"/items/{known}", {}),
        ("OPTIONS", "/recommendations", None),
        ("FOO", "/health", None),
        ("GET", "/recommendations", None),
        ("POST", "/recommendations", []),
        ("POST", "/recommendations", "items"),
        ("POST", "/recommendations", None),
        ("POST", "/recommendations", {"items": None}),
        ("POST", "/recommendations", {"items": [None]}),
        ("POST", "/recommendations", {"items": [[known]]}),
        ("POST", "/recommendations", {"items": [{"id": known}]}),
        ("POST", "/recommendations", {"items": ["x" * 10_000]}),
        ("POST", "/recommendations", {"items": [known] * 1001}),
        ("POST", "/recommendations", {"items": [known], "k": -(10**30)}),
        ("POST", "/recommendations", {"items": [known], "k": 10**30}),
        ("PUT", "/items/fuzz", {"embedding": [0.5] * 65537}),
        ("PUT", "/items/fuzz", {"embedding": [[0.5]] * 32}),
        ("PUT", "/items/fuzz", {"embedding": {"0": 0.5}}),
        ("PUT", "/items/fuzz", {"embedding": [0.5] * 32, "artist_id": "a" * 257}),
        ("PUT", "/items/" + "x" * 300, {"embedding": [0.5] * 32}),
        ("PUT", "/items/%00", {"embedding": [0.5] * 32}),
        ("DELETE", "/items/%ff%fe", None),
        ("GET", "/items/%ed%a0%80/similar", None),
        ("GET", "/items//similar", None),
        ("GET", f"/items/{known}/similar?k=1e3", None),
        ("GET", f"/items/{known}/similar?k=99999999999999999999999999", None),
        ("GET", f"/users/{user}/recommendations?k=%00", None),
        ("GET", f"/users/{user}/recommendations?k=" + "9" * 5000, None),
        ("GET", "/users/%ff/recommendations", None),
        ("GET", "/" + "a" * 5000, None),
    ]
    for method, path, body in requests:
        status, _, payload = exchange(method, url + path, body)
        assert status < 500, (method, path[:80], status, payload[:300])
        if status >= 400 and method != "HEAD":
            error = strictly_utf8_json(payload)["error"]
            assert {"field", "value", "problem"} <= set(error), payload[:300]
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"):
        body = json.dumps({"items": [known]}).encode()
        status, _, payload = exchange(
            "POST", f"{url}/recommendations", raw=body, headers={"Content-Type": content_type}
        )
        assert status < 500, (content_type, status, payload[:300])


# --------------------------------------------------------------------------- what operations see


def scrape(url) -> dict:
    """(metric sample name, frozenset of labels) -> value."""
    status, headers, payload = exchange("GET", f"{url}/metrics", token=None)
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4"), headers
    samples = {}
    for family in text_string_to_metric_families(payload.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def test_metrics_count_requests_by_endpoint_and_status(world, guarded):
    _, _, data = world
    url, _, _ = guarded
    before = scrape(url)
    for _ in range(3):
        assert call("GET", f"{url}/users/nobody-counted/recommendations")[0] == 404
    for _ in range(2):
        assert call("POST", f"{url}/recommendations", {"items": inventory(data)[:2]})[0] == 200
    assert call("DELETE", f"{url}/items/{inventory(data)[0]}", token=None)[0] == 401
    after = scrape(url)

    def delta(name, **labels):
        key = (name, frozenset(labels.items()))
        return after.get(key, 0) - before.get(key, 0)

    requests = "curatornet_http_requests_total"
    assert delta(requests, endpoint="/users/{user_id}/recommendations", method="GET", status="404") == 3
    assert delta(requests, endpoint="/recommendations", method="POST", status="200") == 2
    assert delta(requests, endpoint="/items/{item_id}", method="DELETE", status="401") == 1
    assert delta("curatornet_http_request_duration_seconds_count", endpoint="/recommendations") == 2
    assert delta("curatornet_http_request_duration_seconds_bucket", endpoint="/recommendations", le="+Inf") == 2
    health = call("GET", f"{url}/health")[1]
    assert after[("curatornet_catalogue_items", frozenset())] == health["catalogue_size"]
    info = [labels for (name, labels), value in after.items() if name == "curatornet_model_info" and value == 1]
    assert len(info) == 1 and dict(info[0])["model_id"] == health["model_id"] != ""
    assert dict(info[0])["model"] == "curatornet"


def test_one_access_log_line_per_request(world, guarded):
    url, _, log = guarded
    expected = {
        "GET /items/logged-1/similar 404": call("GET", f"{url}/items/logged-1/similar")[0] == 404,
        "PUT /items/logged-2 401": call("PUT", f"{url}/items/logged-2", {}, token=None)[0] == 401,
        "PUT /items/logged-3 422": call("PUT", f"{url}/items/logged-3", {"embedding": []})[0] == 422,
        "GET /users/logged-4/recommendations 400": exchange(
            "GET", f"{url}/users/logged-4/recommendations", headers={"Host": "evil.example"}
        )[0]
        == 400,
    }
    assert all(expected.values()), expected
    pattern = re.compile(r"curatornet\.access: (\S+ \S+ \d{3}) (\d+\.\d) ms$")
    deadline = time.monotonic() + 30  # the line is written once the answer is sent
    while True:
        lines = [pattern.search(line) for line in log.read_text().splitlines()]
        logged = [m.group(1) for m in lines if m and "logged-" in m.group(1)]
        if len(logged) >= len(expected) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sorted(logged) == sorted(expected), logged


def test_health_shows_no_paths(world, guarded):
    root, _, _ = world
    url, _, log = guarded
    status, body = call("GET", f"{url}/health")
    assert status == 200 and body["model_id"] and body["catalogue_fingerprint"]
    text = json.dumps(body)
    assert "/" not in text.replace("\\/", "") and str(root) not in text and str(log.parent) not in text, text
    assert body["run"] == {"sampling": "none", "l2": 0.0, "seed": 4}


def test_the_openapi_document_describes_the_error_responses(world, guarded):
    _, _, data = world
    url, _, _ = guarded
    status, spec = call("GET", f"{url}/openapi.json")
    assert status == 200
    text = json.dumps(spec)
    assert "HTTPValidationError" not in text and '"detail"' not in text
    schemas = spec["components"]["schemas"]
    assert set(schemas["ErrorResponse"]["required"]) == {"error", "errors"}
    assert set(schemas["ErrorDetail"]["properties"]) == {"field", "value", "problem"}
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    expected = {
        ("put", "/items/{item_id}"): {400, 401, 403, 409, 413, 422, 503, 507},
        ("delete", "/items/{item_id}"): {400, 401, 403, 404, 413, 422, 503, 507},
        ("post", "/admin/reload"): {400, 401, 403, 409, 413},
        ("post", "/recommendations"): {400, 413, 422},
        ("get", "/users/{user_id}/recommendations"): {400, 404, 422},
        ("get", "/items/{item_id}/similar"): {400, 404, 422},
    }
    for (method, path), statuses in expected.items():
        operation = spec["paths"][path][method]
        errors = {int(s) for s in operation["responses"] if int(s) >= 400}
        assert errors == statuses, (method, path, errors)
        for status_code in statuses:
            schema = operation["responses"][str(status_code)]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path, status_code)
        assert ("security" in operation) == (method in ("put", "delete") or path.startswith("/admin"))
    assert "/metrics" in spec["paths"] and "/health" in spec["paths"]
    # The shape documented is the shape sent; no /docs page (its scripts would come from a CDN).
    status, body = call("POST", f"{url}/recommendations", {"items": inventory(data)[:1], "k": 0})
    assert status == 422 and set(body) == {"error", "errors"} and set(body["error"]) == {"field", "value", "problem"}
    for page in ("/docs", "/redoc"):
        assert_error(*call("GET", url + page), 404, "path")
