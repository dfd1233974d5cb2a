"""Rendering every API error as application/problem+json."""

from __future__ import annotations

import json
import logging
import re
from http import HTTPStatus
from typing import Any

from django.http import HttpRequest, HttpResponse

from tessera.core.errors import PROBLEM_CONTENT_TYPE, ProblemError
from tessera.core.logs import mark_logged

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


class RateLimited(ProblemError):
    """429: this client or key used up its allowance; ``retry_after`` seconds until the
    window turns (also the Retry-After header)."""

    status = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(detail, retry_after=self.retry_after)


def problem_response(error: ProblemError, headers: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(
        json.dumps(error.to_dict()), status=error.status, content_type=PROBLEM_CONTENT_TYPE
    )
    for name, value in (headers or {}).items():
        response[name] = value
    if error.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="tessera"'
    if isinstance(error, RateLimited):
        response["Retry-After"] = str(error.retry_after)
    return response


def problem_for_status(status: int, detail: str = "", **extra: Any) -> ProblemError:
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    code = STATUS_CODES.get(status, "internal_error" if status >= 500 else "bad_request")
    return ProblemError(detail or title, status=status, code=code, title=title, **extra)


# A location part that is a field name or a list index; anything else in pydantic's
# locations is its own bookkeeping (a union member's tag "kind=vote", a validator
# "function-wrap[...]", a model's class name) that a client never sent.
_FIELD_PART = re.compile(r"[a-z_][a-z0-9_]*|\d+")


# Strict types: the JSON type a field takes, in the client's terms.
_TYPE_MESSAGES = {
    "int_type": "must be an integer (a JSON number, not a string)",
    "int_from_float": "must be an integer",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "model_type": "must be an object",
    "dict_type": "must be an object",
}


def field_path(loc: Any, ctx: Any = None) -> str:
    """pydantic's loc ("body", "payload", "email") -> "email"; ("query", "limit") -> "limit"."""
    parts = [str(p) for p in (loc or ())]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie", "form"}:
        source, parts = parts[0], parts[1:]
        if source == "body":
            parts = parts[1:]  # the handler's parameter name means nothing to a client
    parts = [p for p in parts if _FIELD_PART.fullmatch(p)]
    if isinstance(ctx, dict) and isinstance(ctx.get("field"), str):
        parts.append(ctx["field"])  # a rule over several fields names the one to fix
    return ".".join(parts)


def pydantic_errors(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for err in errors:
        field = field_path(err.get("loc"), err.get("ctx"))
        message = str(err.get("msg", "is not valid"))
        if err.get("type") == "extra_forbidden":
            message = "is not a known field"
        elif err.get("type") == "missing":
            message = "is required" if field else "a JSON body is required"
        elif err.get("type") in _TYPE_MESSAGES:
            message = _TYPE_MESSAGES[str(err["type"])]
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        entry = {"field": field, "message": message}
        if entry not in out:  # a union reports one problem once per member it tried
            out.append(entry)
    return out


def log_unexpected(request: HttpRequest, exc: BaseException) -> None:
    logger.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    mark_logged(request)  # Django's own line about this 500 is then left out
