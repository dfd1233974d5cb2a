"""The API as an integrator sees it: a JSON client with an API key, and RFC 9457 problems."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client


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


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is an application/problem+json of ``status`` and ``code``; returns its body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json"), response["Content-Type"]
    body = json.loads(response.content)
    assert body["status"] == status
    assert body["code"] == code
    assert body["title"]
    assert body["detail"]
    assert body["type"].endswith(code)
    return body
