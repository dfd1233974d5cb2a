"""The interactive API docs work offline and under a strict Content-Security-Policy:
Swagger UI's files come from Tessera, and the page runs no inline script."""

from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def page() -> str:
    r = Client().get("/api/v1/docs")
    assert r.status_code == 200
    return r.content.decode()


def assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_the_docs_load_nothing_from_another_site(page: str) -> None:
    assert [a for a in assets(page) if "//" in a] == []


def test_the_docs_load_swagger_ui(page: str) -> None:
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets(page))


def test_every_asset_of_the_docs_is_served(page: str) -> None:
    missing = [a for a in assets(page) if Client().get(a).status_code != 200]
    assert missing == []


def test_the_docs_run_no_inline_script(page: str) -> None:
    inline = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", page)
    assert inline == []


def operations() -> list[tuple[str, str, dict]]:
    from tessera.api.v1 import api

    schema = api.get_openapi_schema()
    return [
        (method.upper(), path, op)
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
    ]


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/api/v1/programs"), ("POST", "/api/v1/matching-rules")]
)
def test_admin_operations_say_so(method: str, path: str) -> None:
    op = next(op for m, p, op in operations() if (m, p) == (method, path))
    assert op["x-required-scope"] == "admin"


def test_the_scope_is_in_the_security_requirement() -> None:
    op = next(op for m, p, op in operations() if (m, p) == ("POST", "/api/v1/programs"))
    assert op["security"] == [{"ApiKeyAuth": ["admin"]}]


def test_every_authenticated_operation_states_its_scope() -> None:
    unstated = [
        f"{m} {p}"
        for m, p, op in operations()
        if op.get("security") and "x-required-scope" not in op
    ]
    assert unstated == []


LOWER = {"admin": ("read", "write"), "write": ("read",), "read": ()}


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        (m, p, op["x-required-scope"])
        for m, p, op in operations()
        if op.get("x-required-scope") in ("admin", "write")
    ],
)
def test_a_key_below_the_stated_scope_is_refused(
    make_api: object, method: str, path: str, scope: str
) -> None:
    """What the document says is what the server does: a key with only the scopes below
    the stated one gets 403, before its body is even read."""
    api = make_api(*LOWER[scope])  # type: ignore[operator]
    url = re.sub(r"\{[^}]+\}", "x_1", path).removeprefix("/api/v1")
    r = api.client.generic(method, f"/api/v1{url}", "{}", content_type="application/json",
                           headers={"Authorization": f"Bearer {api.raw_key}"})  # fmt: skip
    assert r.status_code == 403, (method, path, r.content)


def test_no_two_schemas_share_a_name() -> None:
    """The document names each body's schema after its class: two classes of one name
    would silently describe one of them with the other's fields."""
    import importlib
    import pkgutil

    from ninja import Schema

    import tessera.api

    for module in pkgutil.iter_modules(tessera.api.__path__):
        importlib.import_module(f"tessera.api.{module.name}")
    seen: dict[str, set[str]] = {}

    def walk(cls: type) -> None:
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("tessera.") and "[" not in sub.__name__:
                seen.setdefault(sub.__name__, set()).add(f"{sub.__module__}.{sub.__qualname__}")
            walk(sub)

    walk(Schema)
    assert {name: where for name, where in seen.items() if len(where) > 1} == {}
