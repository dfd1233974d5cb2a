"""A request id for every HTTP request: taken from ``X-Request-ID`` when the client (or a
proxy in front of us) sent a sane one, otherwise made here; answered in the same header and
kept in a context variable for the log lines written while the request runs.

An incoming id is copied into every log line, so only short tokens of a safe alphabet are
accepted: anything else (newlines, quotes, markup, a megabyte of text) could forge or break
log lines, and is replaced by a fresh id.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponseBase

HEADER = "X-Request-ID"
_SANE = re.compile(r"[A-Za-z0-9._-]{1,64}")

current_request_id: ContextVar[str | None] = ContextVar("tessera_request_id", default=None)


def accept_request_id(incoming: str | None) -> str:
    """The client's id if it is a sane token, else a new one (32 hex digits)."""
    if incoming and _SANE.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Sets the request id for the duration of the request, and answers it.

    The id also rides on ``request.request_id``: Django logs a response's 4xx/5xx line
    after the middleware chain has returned (and this context variable was reset), with
    the request attached to the record, where the log filter finds it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request_id = accept_request_id(request.headers.get(HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        token = current_request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            # Threads of a server are reused: the next request must not inherit this id.
            current_request_id.reset(token)
        response[HEADER] = request_id
        return response
