"""The service's error responses: one JSON shape for every refusal, and its OpenAPI description.

Every error is ``{"error": {"field", "value", "problem"}, "errors": [...]}``:
the field (or header, or setting) at fault, the value received (shortened,
with lone surrogates escaped so that the answer is always valid UTF-8) and
what is wrong; ``errors`` lists every problem found, ``error`` is the first.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

#: What each error status means, as the OpenAPI document describes it.
ERROR_STATUSES: dict[int, str] = {
    400: "Host header not one of the service's trusted hosts (field `Host`), or a body that cannot be parsed "
    "(field `body`: not JSON, not UTF-8, nested too deeply, a number with too many digits)",
    401: "missing or wrong bearer token (field `Authorization`); changes need `Authorization: Bearer <token>`",
    403: "changes are disabled: the service was started without a token (field `CURATORNET_API_TOKEN`) "
    "or with --read-only (field `read_only`)",
    404: "unknown item, user or path",
    409: "conflict with the current state: the item id exists already",
    413: "request body larger than the service's limit (--max-body-mb, 1 MiB by default)",
    422: "a field's value is invalid: the field and the value are named",
    503: "the database is locked by another connection (with Retry-After, in seconds) or cannot be written",
    507: "the disk or the database is full: the change was not recorded",
}


class ErrorDetail(BaseModel):
    field: str = Field(
        description="what is at fault: a body or query field ('k', 'items.0', 'embedding'), 'body', "
        "a header ('Host', 'Authorization'), a path parameter or a setting ('CURATORNET_API_TOKEN')"
    )
    value: Any = Field(None, description="the value received, shortened (never a token)")
    problem: str = Field(description="what is wrong, and what to do about it")


class ErrorResponse(BaseModel):
    """Every error the service sends (4xx, and 503/507 for the database)."""

    error: ErrorDetail = Field(description="the first problem")
    errors: list[ErrorDetail] = Field(description="every problem found (the first is `error`)")


def error_responses(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these statuses (``descriptions``: ``s409="..."`` overrides one)."""
    return {
        status: {"model": ErrorResponse, "description": descriptions.get(f"s{status}", ERROR_STATUSES[status])}
        for status in statuses
    }


def safe_text(text: str, limit: int = 200) -> str:
    """``text`` with lone surrogates escaped (``\\ud800``), shortened to ``limit`` characters."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def json_safe(value: Any, depth: int = 0) -> Any:
    """A JSON-encodable rendering of a rejected value (NaN as text, long values shortened)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if abs(value) < 10**30 else safe_text(str(value)[:40] + "...", 60)
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, list | tuple) and len(value) <= 20 and depth < 2:
        return [json_safe(v, depth + 1) for v in value]
    if isinstance(value, dict) and len(value) <= 20 and depth < 2:
        return {safe_text(str(k)): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | dict):
        return f"{type(value).__name__} of {len(value)} values"
    return safe_text(repr(value))


def error_detail(field: str, value: Any, problem: str) -> dict[str, Any]:
    """One problem, safe to encode whatever the client sent."""
    return {"field": safe_text(str(field)), "value": json_safe(value), "problem": safe_text(str(problem), 2000)}


def error_content(field: str, value: Any, problem: str, errors: list[dict] | None = None) -> dict[str, Any]:
    main = error_detail(field, value, problem)
    return {"error": main, "errors": errors or [main]}


def error_response(
    status: int, field: str, value: Any, problem: str, errors: list[dict] | None = None, headers: dict | None = None
) -> JSONResponse:
    return JSONResponse(status_code=status, content=error_content(field, value, problem, errors), headers=headers)


def error_body(field: str, value: Any, problem: str) -> bytes:
    """The JSON bytes of an error, for answers sent below the framework (the gate)."""
    return json.dumps(error_content(field, value, problem), ensure_ascii=False).encode("utf-8")
