"""The recommendation service: a FastAPI application over a :class:`~curatornet.serving.recommender.Recommender`.

Start it with ``python -m curatornet serve --model <model dir> --data <data folder>``
(:mod:`curatornet.serving.server`). Its OpenAPI document is at ``/openapi.json``;
there is no ``/docs`` page, whose scripts would come from a CDN that a store's
network may not reach: load the document into any OpenAPI viewer instead.

Every error, whatever its status, is JSON that names the field and the value
(:mod:`curatornet.serving.responses`); no request gets a 500. The gate in front
(:mod:`curatornet.serving.gate`) checks the Host header, the token of changes
and the body size before anything is parsed; the types of a body are strict
(``k`` an integer, ``one_of_a_kind`` a boolean: no ``"5"``, no ``true`` for 1).

Reads of a catalogue of up to :data:`INLINE_WORK` vector entries run on the
event loop, where they cost less than a thread switch; larger ones and VBPR's
fold-in run in FastAPI's thread pool, so that they never hold up the loop.
Changes to such a catalogue run on the loop too (one database commit) unless a
lock is held, by another change, a reload or another process: then they go to
the thread pool, where they wait at most ``lock_wait`` seconds. NumPy releases
the interpreter lock during the matrix products.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, StrictBool, StrictInt
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from curatornet.errors import InputError
from curatornet.serving.gate import Gate, GateSettings
from curatornet.serving.metrics import CONTENT_TYPE, ServiceMetrics
from curatornet.serving.models import NumpyVBPR
from curatornet.serving.recommender import MAX_K, MAX_PROFILE, Recommender, ServiceError, WouldWait
from curatornet.serving.responses import error_detail, error_responses

log = logging.getLogger(__name__)

#: Reads over at most this many vector entries (items known × vector length) run on the event loop.
INLINE_WORK = 4_000_000


def valid_unicode(text: str) -> str:
    """Refuse a string that cannot be UTF-8 (a lone surrogate such as ``"\\ud800"`` in JSON)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"not valid Unicode: a lone surrogate (U+{ord(text[exc.start]):04X}) at character {exc.start}"
        ) from None
    return text


Text = Annotated[str, AfterValidator(valid_unicode)]
ItemId = Annotated[Text, Field(min_length=1, max_length=256)]
FiniteFloat = Annotated[float, Strict(), Field(allow_inf_nan=False)]
WRITE_SECURITY = {"security": [{"bearerAuth": []}]}


class RecommendationRequest(BaseModel):
    """A new user's profile: items they like (ids of the catalogue, sold or removed items included)."""

    # Item ids may come as JSON numbers (UGallery's are numbers): 1234 is "1234".
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
    items: list[ItemId] = Field(min_length=1, max_length=MAX_PROFILE, examples=[["0008d89327dbae18"]])
    k: StrictInt = Field(20, ge=1, le=MAX_K, description="how many items to return (a JSON integer)")


class RecommendedItem(BaseModel):
    item_id: str
    artist_id: str | None
    score: float = Field(description="the model's score (recommendations) or cosine similarity (similar items)")


class Recommendations(BaseModel):
    items: list[RecommendedItem]


class NewItem(BaseModel):
    """A new upload: its image embedding (the model's input length), artist and kind."""

    model_config = ConfigDict(extra="forbid")
    embedding: list[FiniteFloat] = Field(
        min_length=1,
        max_length=65536,
        description="image embedding, as many values as in training; refused when the model's vector for it is "
        "not finite or more than twice as long as the longest vector of the catalogue's items",
    )
    artist_id: Annotated[Text, Strict(), Field(max_length=256)] | None = None
    one_of_a_kind: StrictBool = Field(True, description="false for prints and photographs, which stay after a sale")


class CatalogueChange(BaseModel):
    item_id: str
    catalogue_size: int


class Health(BaseModel):
    status: str
    model: str = Field(description="curatornet or vbpr")
    model_id: str = Field(description="sha256 of the model's files (model.json, weights, standardisation), 16 digits")
    run: dict[str, Any] = Field(description="sampling, λ and seed of the run, as its model.json records them")
    training_sha256: str = Field(description="sha256 of model.json's training section (canonical JSON)")
    catalogue_size: int
    catalogue_fingerprint: str
    items_known: int
    index: str
    vbpr_fold_in: bool
    read_only: bool
    changes: str = Field(description="'token' (changes need the bearer token), 'disabled' (no token) or 'read-only'")


class Reloaded(BaseModel):
    model: str
    model_id: str
    previous_model_id: str
    run: dict[str, Any]
    catalogue_size: int
    items_known: int
    seconds: float


def _field(location: tuple) -> str:
    # ("body", "items", 0) -> "items.0"; ("query", "k") -> "k"; ("body",) -> "body".
    parts = [str(p) for p in location[1:]] if len(location) > 1 else [str(p) for p in location]
    return ".".join(parts)


def _parse_problem(cause: BaseException | None) -> tuple[Any, str]:
    """(value, problem) of a body the framework could not parse."""
    if isinstance(cause, UnicodeDecodeError):
        return f"byte {cause.start}", f"the body is not valid UTF-8 ({cause.reason} at byte {cause.start})"
    if isinstance(cause, RecursionError):
        return "nesting", "the body's JSON is nested too deeply to parse"
    if isinstance(cause, ValueError) and "digits" in str(cause):
        return "number", "the body holds a number with too many digits (more than 4300)"
    return None, f"the body could not be parsed as JSON ({type(cause).__name__ if cause else 'unknown error'})"


def _items(found) -> JSONResponse:
    # Our own values, already of the right types: no second validation.
    return JSONResponse({"items": [{"item_id": r.item_id, "artist_id": r.artist_id, "score": r.score} for r in found]})


def create_app(recommender: Recommender, settings: GateSettings | None = None) -> FastAPI:
    """The application, behind its gate; ``settings`` default: no token (changes refused), loopback only."""
    settings = settings or GateSettings.make(read_only=recommender.read_only)
    app = FastAPI(
        title="CuratorNet recommendations",
        description=(
            "Cold-start recommendations of art images by a trained CuratorNet (or VBPR) model; /health names "
            "the model served. Changes (PUT, DELETE, /admin/) need `Authorization: Bearer <token>`; reads are "
            "open. Every error is JSON: `{error: {field, value, problem}, errors: [...]}`."
        ),
        version="2",
        docs_url=None,
        redoc_url=None,
    )
    app.state.recommender = recommender
    metrics = ServiceMetrics(recommender)
    app.state.metrics = metrics
    changes = "read-only" if settings.read_only else ("token" if settings.token else "disabled")

    def light(snap) -> bool:
        vbpr = isinstance(snap.model.model, NumpyVBPR)
        return not (vbpr and recommender.vbpr_fold_in) and snap.n * snap.vectors.shape[1] <= INLINE_WORK

    async def read(function, *args):
        if light(recommender.snapshot()):
            return function(*args)
        return await run_in_threadpool(function, *args)

    async def change(function, *args):
        # On the event loop when no lock is held: a change handed to a worker thread waits for
        # the loop twice (to start, to answer), behind every queued read, which under load
        # made writes the slowest requests. A change that would wait goes to a thread, so the
        # loop never waits for a lock.
        if light(recommender.snapshot()):
            try:
                return function(*args, wait=False)
            except WouldWait:
                pass
        return await run_in_threadpool(function, *args)

    # ------------------------------------------------------------------ errors

    @app.exception_handler(RequestValidationError)
    def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            location = tuple(e.get("loc", ()))
            context = e.get("ctx") or {}
            if e.get("type") == "value_error" and "error" in context:  # our own validators: their message alone
                problem = str(context["error"])
            else:
                problem = e.get("msg", "invalid") + (f" ({context['error']})" if "error" in context else "")
            if e.get("type") == "json_invalid":  # its location is a character offset, not a field
                detail = error_detail("body", f"character {location[-1]}", f"the body is not valid JSON: {problem}")
                return JSONResponse(status_code=400, content={"error": detail, "errors": [detail]})
            errors.append(error_detail(_field(location), e.get("input"), problem))
        first = errors[0] if errors else error_detail("body", None, "invalid request")
        return JSONResponse(status_code=422, content={"error": first, "errors": errors or [first]})

    @app.exception_handler(ServiceError)
    def refused(request: Request, exc: ServiceError) -> JSONResponse:
        detail = error_detail(exc.field, exc.value, exc.problem)
        return JSONResponse(status_code=exc.status, content={"error": detail, "errors": [detail]}, headers=exc.headers)

    @app.exception_handler(InputError)
    def bad_input(request: Request, exc: InputError) -> JSONResponse:
        detail = error_detail(exc.field or "input", exc.value, exc.problem)
        return JSONResponse(status_code=422, content={"error": detail, "errors": [detail]})

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # the framework's only 400: a body it could not parse
            value, problem = _parse_problem(exc.__cause__)
            detail = error_detail("body", value, problem)
        else:
            detail = error_detail("path", f"{request.method} {request.url.path}", str(exc.detail))
        return JSONResponse(status_code=exc.status_code, content={"error": detail, "errors": [detail]})

    @app.exception_handler(Exception)
    def unexpected(request: Request, exc: Exception) -> JSONResponse:  # a bug: still JSON, and logged
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        where = f"{request.method} {request.url.path}"
        detail = error_detail("request", where, f"internal error: {type(exc).__name__}")
        return JSONResponse(status_code=500, content={"error": detail, "errors": [detail]})

    # ------------------------------------------------------------------ reads

    @app.post(
        "/recommendations",
        response_model=Recommendations,
        summary="Top k for a new user's liked items",
        responses=error_responses(400, 413, 422),
    )
    async def recommend(request: RecommendationRequest) -> JSONResponse:
        """The profile's items are never recommended; candidates are the items currently in the catalogue."""
        return _items(await read(recommender.recommend_for_items, request.items, request.k))

    @app.get(
        "/users/{user_id}/recommendations",
        response_model=Recommendations,
        summary="Top k for a user of the purchase log",
        responses=error_responses(400, 404, 422, s404="unknown user"),
    )
    async def recommend_user(
        user_id: Annotated[Text, PathParam(min_length=1)], k: Annotated[int, Query(ge=1, le=MAX_K)] = 20
    ) -> JSONResponse:
        """Profile: all of the user's purchases, none of which is recommended."""
        return _items(await read(recommender.recommend_for_user, user_id, k))

    @app.get(
        "/items/{item_id}/similar",
        response_model=Recommendations,
        summary="Nearest catalogue items",
        responses=error_responses(400, 404, 422, s404="unknown item"),
    )
    async def similar(
        item_id: Annotated[Text, PathParam(min_length=1)], k: Annotated[int, Query(ge=1, le=MAX_K)] = 10
    ) -> JSONResponse:
        """Cosine similarity of the model's item vectors: CuratorNet's item tower output Φ(f_i), or VBPR's
        [γ_i, E f_i]. Cosine, not the inner product, so that an item's overall popularity (its vector's
        length) does not decide which items look alike."""
        return _items(await read(recommender.similar_items, item_id, k))

    @app.get("/health", response_model=Health, summary="The model served and the catalogue's size")
    async def health() -> dict[str, Any]:
        """No file paths: anyone may read it."""
        return {**recommender.health(), "changes": changes}

    @app.get(
        "/metrics",
        summary="Metrics in the Prometheus text format",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text exposition format"}},
    )
    async def prometheus_metrics(request: Request) -> Response:
        """Requests by endpoint and status, a latency histogram, catalogue size, the model's id."""
        body, content_type = metrics.render(request.headers.get("accept"))
        return Response(body, headers={"content-type": content_type})

    # ------------------------------------------------------------------ changes

    @app.put(
        "/items/{item_id}",
        response_model=CatalogueChange,
        status_code=201,
        summary="Add a new upload",
        responses=error_responses(400, 401, 403, 409, 413, 422, 503, 507, s409="an item with this id exists"),
        openapi_extra=WRITE_SECURITY,
    )
    async def add_item(
        item_id: Annotated[Text, PathParam(min_length=1, max_length=256)], item: NewItem
    ) -> JSONResponse:
        """A candidate from the very next request on, without retraining; kept across restarts."""
        args = (item_id, item.embedding, item.artist_id, item.one_of_a_kind)
        size = await change(recommender.add_item, *args)
        return JSONResponse({"item_id": item_id, "catalogue_size": size}, status_code=201)

    @app.delete(
        "/items/{item_id}",
        response_model=CatalogueChange,
        summary="Remove a sold or withdrawn item",
        responses=error_responses(400, 401, 403, 404, 413, 422, 503, 507, s404="not an item of the catalogue"),
        openapi_extra=WRITE_SECURITY,
    )
    async def remove_item(item_id: Annotated[Text, PathParam(min_length=1)]) -> JSONResponse:
        """Never recommended again (it may still appear in profiles); kept across restarts."""
        size = await change(recommender.remove_item, item_id)
        return JSONResponse({"item_id": item_id, "catalogue_size": size})

    @app.post(
        "/admin/reload",
        response_model=Reloaded,
        summary="Load the model now selected, without downtime",
        responses=error_responses(
            400,
            401,
            403,
            409,
            413,
            s403="the service was started without a token",
            s409="the selected model does not load or belongs to another catalogue: the old one keeps serving",
        ),
        openapi_extra=WRITE_SECURITY,
    )
    def reload() -> dict[str, Any]:
        """Loads the run that --model selects now (after a retrain, say), re-applies the catalogue's
        changes and swaps it in atomically: requests in flight finish on the old model. SIGHUP does the same."""
        result = recommender.reload()
        log.info(
            "reloaded on request: model %s from %s (was %s)",
            result["model_id"],
            recommender.model_dir,
            result["previous_model_id"],
        )
        return result

    # ------------------------------------------------------------------ OpenAPI, gate

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearerAuth"] = {
                "type": "http",
                "scheme": "bearer",
                "description": "the token of CURATORNET_API_TOKEN or --token-file",
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi

    def endpoint_of(scope) -> str:
        route = scope.get("route")
        if route is None:  # refused by the gate before routing
            for candidate in app.router.routes:
                match, _ = candidate.matches(scope)
                if match is not Match.NONE:
                    route = candidate
                    break
        return getattr(route, "path", None) or "unmatched"

    app.add_middleware(Gate, settings=settings, endpoint_of=endpoint_of, observe=metrics.observe)
    return app
