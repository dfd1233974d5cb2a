"""Bearer API keys for django-ninja, with scopes: no or bad key 401, missing scope 403."""

from __future__ import annotations

import hashlib
from typing import Any

from django.http import HttpRequest
from ninja.security.http import HttpAuthBase

from tessera.core.apikeys import authenticate_key
from tessera.core.errors import Forbidden
from tessera.core.idempotency import fingerprint
from tessera.core.models import SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE, ApiKey


def key_from_request(request: HttpRequest) -> ApiKey | None:
    """The request's API key, looked up once per request (the idempotency layer asks too)."""
    cached = getattr(request, "_tessera_api_key", None)
    if cached is not None or getattr(request, "_tessera_api_key_checked", False):
        return cached
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    key = authenticate_key(token.strip()) if scheme.lower() == "bearer" else None
    request._tessera_api_key = key  # type: ignore[attr-defined]
    request._tessera_api_key_checked = True  # type: ignore[attr-defined]
    return key


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
        if key is None:
            return None  # ninja answers 401
        if not key.has_scope(self.scope):
            raise Forbidden(f"This API key lacks the '{self.scope}' scope.")
        return key


read_auth = ApiKeyAuth(SCOPE_READ)
write_auth = ApiKeyAuth(SCOPE_WRITE)
admin_auth = ApiKeyAuth(SCOPE_ADMIN)
