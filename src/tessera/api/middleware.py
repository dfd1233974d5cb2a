"""Two layers around every API request.

``ApiWriteMiddleware`` (outer) runs each mutating API request in one transaction that rolls
back on any error response (so bad input writes nothing, rule 8) and honours
``Idempotency-Key`` (rule 5). ``ApiProblemMiddleware`` (inner) turns framework error pages
(unknown URL, wrong method, a crash) into problem+json, so clients only ever see one
error format and the idempotency layer stores the same body a client would get.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import HttpRequest, HttpResponse

from tessera.api.auth import key_from_request
from tessera.api.problems import problem_for_status, problem_response
from tessera.api.transactions import runs_own_transactions
from tessera.core import idempotency
from tessera.core.errors import (
    PROBLEM_CONTENT_TYPE,
    PayloadTooLarge,
    ProblemError,
    UnsupportedMediaType,
)
from tessera.core.requeststate import state_of

API_PREFIX = "/api/"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Responses a retry with the same key should see again. Malformed or invalid requests
# (400, 422) and server errors are not stored: the client may fix or retry them.
NOT_STORED = frozenset({400, 401, 403, 422, 429})

# Paths with their own replay protection (Stripe webhooks: the event id).
NO_IDEMPOTENCY_PREFIXES = ("/api/v1/webhooks/",)

Handler = Callable[[HttpRequest], HttpResponse]


def _is_problem(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE)


def _unsupported_body(request: HttpRequest) -> UnsupportedMediaType | None:
    """A body the API would read as JSON must say it is JSON (in UTF-8, the only encoding
    JSON has): a form post or plain text is refused, not parsed on a guess."""
    if not request.body:
        return None
    media_type = (request.content_type or "").lower()
    charset = (request.content_params or {}).get("charset", "utf-8").lower()
    if (media_type == "application/json" or media_type.endswith("+json")) and charset in {
        "utf-8",
        "utf8",
    }:
        return None
    sent = request.headers.get("Content-Type") or "no Content-Type"
    return UnsupportedMediaType(
        f"Send the body as JSON with Content-Type: application/json (got {sent})."
    )


class ApiProblemMiddleware:
    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith(API_PREFIX)
            and response.status_code >= 400
            and not _is_problem(response)
        ):
            detail = ""
            if response.status_code == 405:
                allowed = response.get("Allow", "")
                detail = f"{request.method} is not allowed here; allowed: {allowed}"
            elif response.status_code == 404:
                detail = f"No API endpoint at {request.path}"
            converted = problem_response(problem_for_status(response.status_code, detail))
            if response.has_header("Allow"):
                converted["Allow"] = response["Allow"]
            return converted
        return response


class ApiWriteMiddleware:
    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX) or request.method not in MUTATING:
            return self.get_response(request)
        try:
            request.body  # noqa: B018 - read now, where an oversized body can get its answer
        except RequestDataTooBig:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return problem_response(PayloadTooLarge(f"The body is larger than {limit:,d} bytes."))
        if (unsupported := _unsupported_body(request)) is not None:
            return problem_response(unsupported)
        raw_key = request.headers.get("Idempotency-Key")
        if raw_key is None or request.path.startswith(NO_IDEMPOTENCY_PREFIXES):
            return self._run(request)
        try:
            key = idempotency.check_key(raw_key)
        except ProblemError as exc:
            return problem_response(exc)
        api_key = key_from_request(request)
        if api_key is None:
            return self.get_response(request)  # the API answers 401; nothing to remember
        body = request.body  # read now: the view may not, and the fingerprint needs it
        try:
            row, stored = idempotency.begin(
                api_key,
                key,
                method=request.method or "POST",
                path=request.get_full_path(),
                fp=idempotency.fingerprint(request.method or "POST", request.get_full_path(), body),
            )
        except ProblemError as exc:
            return problem_response(exc)
        if stored is not None:
            replay = HttpResponse(
                stored.body, status=stored.status, content_type=stored.content_type
            )
            replay["Idempotent-Replayed"] = "true"
            return replay

        try:
            response = self._run(request, on_commit_store=row)
        except BaseException:
            idempotency.release(row)
            raise
        state = state_of(request)
        if (
            response.status_code >= 500 and not state.replay_error
        ) or response.status_code in NOT_STORED:
            idempotency.release(row)
        elif not state.response_stored:
            # Rolled-back 4xx outcomes (409 sold out, 402 declined) are still the answer to
            # this request; store them outside the rolled-back transaction.
            idempotency.complete(row, self._snapshot(response))
        return response

    @staticmethod
    def _snapshot(response: HttpResponse) -> idempotency.StoredResponse:
        return idempotency.StoredResponse(
            status=response.status_code,
            content_type=response.get("Content-Type", "application/json"),
            body=bytes(response.content),
        )

    def _run(
        self, request: HttpRequest, on_commit_store: idempotency.IdempotencyKey | None = None
    ) -> HttpResponse:
        if runs_own_transactions(request):  # a saga across Stripe: rule 4
            return self.get_response(request)
        with transaction.atomic():
            response = self.get_response(request)
            if response.status_code >= 400 and not state_of(request).keep_writes:
                transaction.set_rollback(True)
            elif on_commit_store is not None and response.status_code < 400:
                # Same transaction as the request's writes: a stored response proves they
                # committed, and a rollback takes the stored response with it.
                idempotency.complete(on_commit_store, self._snapshot(response))
                state_of(request).response_stored = True
        return response
