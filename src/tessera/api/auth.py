"""Bearer API keys for django-ninja, with scopes: no or bad key 401, missing scope 403, and
rate limits: too many bad keys from one client, or too many checkouts, 429."""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage
from ninja.security.http import HttpAuthBase

from tessera.api.problems import RateLimited
from tessera.core.apikeys import authenticate_key
from tessera.core.errors import Forbidden
from tessera.core.idempotency import fingerprint
from tessera.core.models import SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE, ApiKey
from tessera.core.ratelimits import spend
from tessera.core.requeststate import state_of

AUTH_FAILURES = "api-auth-failures"  # the rate-limit counter of failed keys, per client IP


def _auth_failures(request: HttpRequest, *, count: bool) -> dict[str, Any] | None:
    usage: dict[str, Any] | None = get_usage(
        request,
        group=AUTH_FAILURES,
        key="ip",
        rate=settings.TESSERA_API_AUTH_FAILURE_RATE,
        increment=count,
    )
    return usage


def _locked_out_for(request: HttpRequest) -> int | None:
    """Seconds until this client may try keys again, when its failures used the allowance."""
    usage = _auth_failures(request, count=False)
    # time_left < 0 is django-ratelimit's "the cache did not answer": the key is still
    # checked, so a cache outage must not lock every integration out of the API.
    if usage is None or usage["time_left"] < 0 or usage["count"] < usage["limit"]:
        return None
    return max(1, int(usage["time_left"]))


def key_from_request(request: HttpRequest) -> ApiKey | None:
    """The request's API key, looked up once per request (the idempotency layer asks too).
    A client past its allowance of failed keys gets none, without its key being checked:
    guessing keys costs the guesser, not the database."""
    state = state_of(request)
    if state.api_key_checked:
        return state.api_key
    header = request.headers.get("Authorization", "")
    key = None
    if header:  # no credential is no guess: only a key sent and refused counts
        state.locked_out_for = _locked_out_for(request)
        if state.locked_out_for is None:
            scheme, _, token = header.partition(" ")
            key = authenticate_key(token.strip()) if scheme.lower() == "bearer" else None
            if key is None:
                _auth_failures(request, count=True)
    state.api_key = key
    state.api_key_checked = True
    return key


def _api_key_id(group: str, request: HttpRequest) -> str:
    return str(request.auth.pk)  # type: ignore[attr-defined]


def limit_checkouts(request: HttpRequest) -> None:
    """Checkouts per API key and per client IP (TESSERA_CHECKOUT_RATE, ..._PER_CLIENT): a
    card-testing run or a runaway integration is refused before it reaches Stripe. Every
    attempt counts; an idempotent replay never reaches the view, so it does not. Called
    first in the view, after authentication (a wrapper would hide the view's annotations
    from django-ninja, which reads them in the view's own module)."""
    waits = [
        spend(request, "checkout-key", _api_key_id, settings.TESSERA_CHECKOUT_RATE),
        spend(request, "checkout-client", "ip", settings.TESSERA_CHECKOUT_RATE_PER_CLIENT),
    ]
    wait = max((w for w in waits if w is not None), default=None)
    if wait is not None:
        raise RateLimited(f"Too many checkouts; retry in {wait} s.", retry_after=wait)


def request_key(request: HttpRequest) -> str | None:
    """The client's name for this request (its Idempotency-Key, scoped to its API key and
    hashed), for services that must recognise a retry themselves: a payment resumed after
    a crash must not charge twice. None without a key."""
    raw = (request.headers.get("Idempotency-Key") or "").strip()
    api_key = key_from_request(request)
    if not raw or api_key is None:
        return None
    # The request itself is part of the name: a key reused for another request after its
    # idempotency record expired must start a new payment, not resume an old one.
    method, path = request.method or "POST", request.get_full_path()
    asked = fingerprint(method, path, request.body)
    return hashlib.sha256(f"{api_key.pk}\0{raw}\0{asked}".encode()).hexdigest()


class ApiKeyAuth(HttpAuthBase):
    openapi_type = "http"
    openapi_scheme = "bearer"

    def __init__(self, scope: str) -> None:
        self.scope = scope
        super().__init__()

    def __call__(self, request: HttpRequest) -> Any:
        key = key_from_request(request)
        locked_out_for = state_of(request).locked_out_for
        if key is None and locked_out_for is not None:
            raise RateLimited(
                "Too many requests with an invalid API key from this address; "
                f"retry in {locked_out_for} s.",
                retry_after=locked_out_for,
            )
        if key is None:
            return None  # ninja answers 401
        if not key.has_scope(self.scope):
            raise Forbidden(f"This API key lacks the '{self.scope}' scope.")
        return key


read_auth = ApiKeyAuth(SCOPE_READ)
write_auth = ApiKeyAuth(SCOPE_WRITE)
admin_auth = ApiKeyAuth(SCOPE_ADMIN)
