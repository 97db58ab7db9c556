"""The recommendation service: a FastAPI application over a :class:`~curatornet.serving.recommender.Recommender`.

Start it with ``python -m curatornet serve --model <model dir> --data <data folder>``;
the OpenAPI documentation is at ``/docs``. Every error is a 4xx whose JSON body
names the field and the value:
``{"error": {"field": "k", "value": 0, "problem": "..."}, "errors": [...]}``.

Endpoints are plain functions: FastAPI runs them in its thread pool, so a
slow database commit never blocks the event loop, and NumPy releases the
interpreter lock during the matrix products.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from curatornet.errors import InputError
from curatornet.serving.recommender import MAX_K, MAX_PROFILE, Recommender, ServiceError

log = logging.getLogger(__name__)

ItemId = Annotated[str, Field(min_length=1, max_length=256)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class RecommendationRequest(BaseModel):
    """A new user's profile: items they like (ids of the catalogue, sold or removed items included)."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
    items: list[ItemId] = Field(min_length=1, max_length=MAX_PROFILE, examples=[["0008d89327dbae18"]])
    k: int = Field(20, ge=1, le=MAX_K, description="how many items to return")


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
        min_length=1, max_length=65536, description="image embedding, as many values as in training"
    )
    artist_id: str | None = Field(None, max_length=256)
    one_of_a_kind: bool = Field(True, description="false for prints and photographs, which stay after a sale")


class CatalogueChange(BaseModel):
    item_id: str
    catalogue_size: int


def _json_safe(value: Any, depth: int = 0) -> Any:
    """A JSON-encodable rendering of a rejected value (NaN as text, long values shortened)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value if len(value) <= 200 else value[:197] + "..."
    if isinstance(value, list | tuple) and len(value) <= 20 and depth < 2:
        return [_json_safe(v, depth + 1) for v in value]
    if isinstance(value, dict) and len(value) <= 20 and depth < 2:
        return {str(k): _json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | dict):
        return f"{type(value).__name__} of {len(value)} values"
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _error(status: int, field: str, value: Any, problem: str, errors: list | None = None) -> JSONResponse:
    main = {"field": field, "value": _json_safe(value), "problem": problem}
    return JSONResponse(status_code=status, content={"error": main, "errors": errors or [main]})


def _field(location: tuple) -> str:
    # ("body", "items", 0) -> "items.0"; ("query", "k") -> "k"; ("body",) -> "body".
    parts = [str(p) for p in location[1:]] if len(location) > 1 else [str(p) for p in location]
    return ".".join(parts)


def create_app(recommender: Recommender) -> FastAPI:
    app = FastAPI(
        title="CuratorNet recommendations",
        description=(
            "Cold-start recommendations of art images by a trained CuratorNet (or VBPR) model. "
            f"Model: {recommender.model_name}, catalogue fingerprint {recommender.data.fingerprint}."
        ),
        version="1",
    )
    app.state.recommender = recommender

    @app.exception_handler(RequestValidationError)
    def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            location = tuple(e.get("loc", ()))
            problem = e.get("msg", "invalid") + (f" ({e['ctx']['error']})" if "error" in e.get("ctx", {}) else "")
            if e.get("type") == "json_invalid":  # its location is a character offset, not a field
                errors.append({"field": "body", "value": f"character {location[-1]}", "problem": problem})
            else:
                errors.append({"field": _field(location), "value": _json_safe(e.get("input")), "problem": problem})
        first = errors[0] if errors else {"field": "body", "value": None, "problem": "invalid request"}
        return _error(422, first["field"], first["value"], first["problem"], errors)

    @app.exception_handler(ServiceError)
    def refused(request: Request, exc: ServiceError) -> JSONResponse:
        return _error(exc.status, exc.field, exc.value, exc.problem)

    @app.exception_handler(InputError)
    def bad_input(request: Request, exc: InputError) -> JSONResponse:
        return _error(422, exc.field or "input", exc.value, exc.problem)

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, "path", f"{request.method} {request.url.path}", str(exc.detail))

    @app.post("/recommendations", response_model=Recommendations, summary="Top k for a new user's liked items")
    def recommend(request: RecommendationRequest) -> Recommendations:
        """The profile's items are never recommended; candidates are the items currently in the catalogue."""
        found = recommender.recommend_for_items(request.items, request.k)
        return Recommendations(items=[RecommendedItem(**vars(r)) for r in found])

    @app.get(
        "/users/{user_id}/recommendations",
        response_model=Recommendations,
        summary="Top k for a user of the purchase log",
    )
    def recommend_user(
        user_id: Annotated[str, PathParam(min_length=1)], k: Annotated[int, Query(ge=1, le=MAX_K)] = 20
    ) -> Recommendations:
        """Profile: all of the user's purchases, none of which is recommended."""
        found = recommender.recommend_for_user(user_id, k)
        return Recommendations(items=[RecommendedItem(**vars(r)) for r in found])

    @app.put("/items/{item_id}", response_model=CatalogueChange, status_code=201, summary="Add a new upload")
    def add_item(item_id: Annotated[str, PathParam(min_length=1, max_length=256)], item: NewItem) -> CatalogueChange:
        """A candidate from the very next request on, without retraining; kept across restarts."""
        size = recommender.add_item(item_id, item.embedding, item.artist_id, item.one_of_a_kind)
        return CatalogueChange(item_id=item_id, catalogue_size=size)

    @app.delete("/items/{item_id}", response_model=CatalogueChange, summary="Remove a sold or withdrawn item")
    def remove_item(item_id: Annotated[str, PathParam(min_length=1)]) -> CatalogueChange:
        """Never recommended again (it may still appear in profiles); kept across restarts."""
        size = recommender.remove_item(item_id)
        return CatalogueChange(item_id=item_id, catalogue_size=size)

    @app.get("/items/{item_id}/similar", response_model=Recommendations, summary="Nearest catalogue items")
    def similar(
        item_id: Annotated[str, PathParam(min_length=1)], k: Annotated[int, Query(ge=1, le=MAX_K)] = 10
    ) -> Recommendations:
        """Cosine similarity of the model's item vectors: CuratorNet's item tower output Φ(f_i), or VBPR's
        [γ_i, E f_i]. Cosine, not the inner product, so that an item's overall popularity (its vector's
        length) does not decide which items look alike."""
        found = recommender.similar_items(item_id, k)
        return Recommendations(items=[RecommendedItem(**vars(r)) for r in found])

    @app.get("/health", summary="Model, training configuration hash and catalogue size")
    def health() -> dict[str, Any]:
        return recommender.health()

    return app


def serve(
    model_dir: str | Path,
    data_dir: str | Path,
    db_path: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    index: str = "exact",
    vbpr_fold_in: bool = False,
    log_level: str = "info",
) -> None:
    """Load everything, then run the service on uvicorn until interrupted."""
    import uvicorn
    from threadpoolctl import threadpool_limits

    recommender = Recommender(model_dir, data_dir, db_path, index=index, vbpr_fold_in=vbpr_fold_in)
    # Requests run in parallel threads, each a small product: BLAS and OpenMP thread
    # pools per call would only oversubscribe the cores (and spin), so one thread each.
    threadpool_limits(limits=1)
    log.info(
        "serving %s from %s: %d items in the catalogue, database %s",
        recommender.model_name,
        model_dir,
        recommender.catalogue_size(),
        recommender.db_path,
    )
    try:
        uvicorn.run(create_app(recommender), host=host, port=port, log_level=log_level)
    finally:
        recommender.close()
