"""The first and last thing every request meets: trusted hosts, write authorisation, body size,
then one access-log line and the metrics.

In order, before anything of the request is parsed:

1. **Host.** The Host header must name one of the trusted hosts (the bind
   address, ``localhost``, ``127.0.0.1`` and ``::1`` by default; more with
   ``--allowed-host``), else 400: a web page that rebinds its own DNS name to
   127.0.0.1 cannot reach the service from a browser.
2. **Authorisation.** Changes (PUT, DELETE, PATCH) and every ``/admin/``
   path need ``Authorization: Bearer <token>``, compared in constant time
   (:func:`hmac.compare_digest`): 401 when missing or wrong. Without a
   configured token they are refused with 403 naming the missing setting, as
   are catalogue changes of a ``--read-only`` service. Reads stay open.
3. **Body size.** A declared Content-Length over the limit is answered 413 at
   once, without reading the body; a body without one is read up to the limit
   and answered 413 as soon as it passes it.

Every answer, the gate's own included, is counted in the metrics and logged as
one line of the ``curatornet.access`` logger (INFO): method, path, status,
milliseconds.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from curatornet.serving.responses import error_body

access_log = logging.getLogger("curatornet.access")

#: Host names every service trusts (the loopback interface).
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
#: Default request body limit: 1 MiB.
DEFAULT_MAX_BODY = 1 << 20
#: Environment variable holding the write token.
TOKEN_VARIABLE = "CURATORNET_API_TOKEN"
_CHANGES = frozenset({"PUT", "DELETE", "PATCH"})


def host_name(header: str) -> str:
    """The host of a Host header, lower case, without port, brackets or trailing dot."""
    header = header.strip().lower()
    if header.startswith("["):  # [::1]:8000
        return header[1:].partition("]")[0]
    if header.count(":") == 1:
        header = header.partition(":")[0]
    return header.rstrip(".")


@dataclass(frozen=True)
class GateSettings:
    """``token``: the bearer token for changes (None: changes refused with 403); ``allowed_hosts``:
    trusted Host names (``*`` trusts any); ``max_body``: bytes; ``read_only``: refuse catalogue changes."""

    token: str | None = None
    allowed_hosts: frozenset[str] = field(default_factory=lambda: frozenset(LOOPBACK_HOSTS))
    max_body: int = DEFAULT_MAX_BODY
    read_only: bool = False

    @classmethod
    def make(
        cls,
        token: str | None = None,
        allowed_hosts: Iterable[str] = (),
        max_body: int = DEFAULT_MAX_BODY,
        read_only: bool = False,
    ) -> GateSettings:
        hosts = frozenset(LOOPBACK_HOSTS) | {host_name(h) for h in allowed_hosts if h.strip()}
        return cls(token, hosts, int(max_body), bool(read_only))


class Gate:
    """ASGI middleware applying :class:`GateSettings` (see the module docstring).

    ``endpoint_of(scope)`` names the route template of a request for the
    metrics; ``observe(endpoint, method, status, seconds)`` counts it."""

    def __init__(
        self,
        app: ASGIApp,
        settings: GateSettings,
        endpoint_of: Callable[[Scope], str],
        observe: Callable[[str, str, int, float], None] | None = None,
    ):
        self.app = app
        self.settings = settings
        self.endpoint_of = endpoint_of
        self.observe = observe
        self._token = None if settings.token is None else settings.token.encode("utf-8")
        self._any_host = "*" in settings.allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless an answer starts

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                await self._answer(send_counted, *refusal)
                return
            body = await self._read_body(receive)
            if body is None:  # the client went away
                status = 499
                return
            if isinstance(body, int):
                limit = self.settings.max_body
                await self._answer(
                    send_counted,
                    413,
                    "body",
                    f"more than {limit} bytes",
                    f"the request body is larger than the service's limit of {limit} bytes (--max-body-mb)",
                    {"connection": "close"},
                )
                return
            await self.app(scope, _replay(body, receive), send_counted)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    # ------------------------------------------------------------------ checks

    def _refusal(self, scope: Scope) -> tuple | None:
        """(status, field, value, problem, headers) of a request refused before its body is read."""
        host = authorization = length = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"authorization":
                authorization = value
            elif name == b"content-length":
                length = value
        if not self._any_host and (host is None or host_name(host) not in self.settings.allowed_hosts):
            return (
                400,
                "Host",
                host,
                "not a trusted host of this service: the operator can add it with --allowed-host",
                None,
            )
        method, path = scope["method"], scope["path"]
        admin = path == "/admin" or path.startswith("/admin/")
        if method in _CHANGES or admin:
            refused = self._authorise(authorization, admin)
            if refused is not None:
                return refused
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared > self.settings.max_body:
                limit = self.settings.max_body
                problem = f"the request body is larger than the service's limit of {limit} bytes (--max-body-mb)"
                return 413, "body", f"{declared} bytes", problem, {"connection": "close"}
        return None

    def _authorise(self, authorization: bytes | None, admin: bool) -> tuple | None:
        if self.settings.read_only and not admin:
            problem = "the service was started with --read-only: the catalogue cannot change"
            return 403, "read_only", True, problem, None
        if self._token is None:
            problem = (
                f"changes are disabled: the service was started without a token; set {TOKEN_VARIABLE} "
                "or --token-file and restart it"
            )
            return 403, TOKEN_VARIABLE, None, problem, None
        scheme, _, given = (authorization or b"").strip().partition(b" ")
        if scheme.lower() != b"bearer" or not given.strip():
            problem = "this change needs a token: send the header 'Authorization: Bearer <token>'"
            return 401, "Authorization", None, problem, {"www-authenticate": 'Bearer realm="curatornet"'}
        if not hmac.compare_digest(given.strip(), self._token):
            problem = "wrong token (not shown)"
            headers = {"www-authenticate": 'Bearer realm="curatornet", error="invalid_token"'}
            return 401, "Authorization", "Bearer ...", problem, headers
        return None

    async def _read_body(self, receive: Receive) -> bytes | int | None:
        """The whole body; its size so far once it passes the limit; None when the client disconnected."""
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.settings.max_body:
                return total
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    async def _answer(send: Send, status: int, field: str, value, problem: str, headers: dict | None) -> None:
        body = error_body(field, value, problem)
        raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    # ------------------------------------------------------------------ accounting

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope["method"]
        # The path as sent (percent-encoded): one line per request, whatever it holds.
        path = scope.get("raw_path") or scope["path"].encode("utf-8", "backslashreplace")
        path = path.decode("ascii", "backslashreplace")
        if self.observe is not None:
            self.observe(self.endpoint_of(scope), method, status, seconds)
        access_log.info("%s %s %d %.1f ms", method, path, status, seconds * 1e3)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body read by the gate, then the client's own messages (disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
