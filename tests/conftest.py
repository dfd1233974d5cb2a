from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from tessera.core.apikeys import create_api_key
from tessera.core.models import SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE
from tests.stripe_support import localstripe_url, stripe_env  # noqa: F401 - fixtures


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" in engine:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL row locks; runs in the PostgreSQL pass")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


class Api:
    """A test client that speaks JSON with an API key, like an integrator would."""

    def __init__(self, raw_key: str | None) -> None:
        self.client = Client()
        self.raw_key = raw_key

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        out = dict(headers or {})
        if self.raw_key is not None:
            out.setdefault("Authorization", f"Bearer {self.raw_key}")
        return out

    def get(self, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
        return self.client.get(f"/api/v1{path}", params, headers=self._headers(headers))

    def post(
        self,
        path: str,
        body: Any = None,
        *,
        raw: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.post(
            f"/api/v1{path}", data, content_type="application/json", headers=self._headers(headers)
        )

    def send(self, method: str, path: str, body: Any) -> Any:
        """PUT or PATCH with a JSON body."""
        return self.client.generic(
            method,
            f"/api/v1{path}",
            json.dumps(body),
            content_type="application/json",
            headers=self._headers(None),
        )

    def call(self, method: str, path: str, headers: dict[str, str] | None = None) -> Any:
        return self.client.generic(method, f"/api/v1{path}", headers=self._headers(headers))


@pytest.fixture
def make_api(db: None) -> Callable[..., Api]:
    def make(*scopes: str) -> Api:
        _, raw = create_api_key("test", scopes or (SCOPE_READ, SCOPE_WRITE))
        return Api(raw)

    return make


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api(SCOPE_READ, SCOPE_WRITE)


@pytest.fixture
def admin_api(make_api: Callable[..., Api]) -> Api:
    return make_api(SCOPE_ADMIN)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json"), response["Content-Type"]
    body = json.loads(response.content)
    assert body["status"] == status
    assert body["code"] == code
    assert body["title"] and body["detail"] and body["type"].endswith(code)
    return body


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Rate-limit counters live in the process's cache: each test starts from none."""
    from django.core.cache import cache

    cache.clear()
