"""Rendering every API error as application/problem+json."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from django.http import HttpRequest, HttpResponse

from tessera.core.errors import PROBLEM_CONTENT_TYPE, ProblemError

logger = logging.getLogger("tessera.api")

# Codes for statuses raised by the framework rather than by our services.
STATUS_CODES = {
    400: "validation_error",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
}


def problem_response(error: ProblemError, headers: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(
        json.dumps(error.to_dict()), status=error.status, content_type=PROBLEM_CONTENT_TYPE
    )
    for name, value in (headers or {}).items():
        response[name] = value
    if error.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="tessera"'
    return response


def problem_for_status(status: int, detail: str = "", **extra: Any) -> ProblemError:
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    code = STATUS_CODES.get(status, "internal_error" if status >= 500 else "bad_request")
    return ProblemError(detail or title, status=status, code=code, title=title, **extra)


def field_path(loc: Any) -> str:
    """pydantic's loc ("body", "payload", "email") -> "email"; ("query", "limit") -> "limit"."""
    parts = [str(p) for p in (loc or ())]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie", "form"}:
        source, parts = parts[0], parts[1:]
        if source == "body":
            parts = parts[1:]  # the handler's parameter name means nothing to a client
    return ".".join(parts)


def pydantic_errors(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for err in errors:
        field = field_path(err.get("loc"))
        message = str(err.get("msg", "is not valid"))
        if err.get("type") == "extra_forbidden":
            message = "is not a known field"
        elif err.get("type") == "missing":
            message = "is required" if field else "a JSON body is required"
        out.append({"field": field, "message": message})
    return out


def log_unexpected(request: HttpRequest, exc: BaseException) -> None:
    logger.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
