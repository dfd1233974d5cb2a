"""The API's authorisation matrix: every operation of the OpenAPI document against every
kind of caller, derived from one table of the scope each operation needs.

The rules: no key, a malformed key or a revoked key is 401; a key without the scope is
403; ``admin`` implies every scope, ``read`` and ``write`` are separate; a sufficient key
gets past authentication (whatever the handler then says: 200, 404, 422...). Both refusals
are problem+json, and a refused write changes no table. A new operation without an entry
here fails until its scope is written down.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from tessera.api.v1 import api
from tessera.core.models import SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE
from tests.support.authz import (
    API_PREFIX,
    MISSING,
    ApiPrincipal,
    World,
    api_operations,
    api_routes,
    changed_tables,
    encode,
    path_parameters,
    shared_world,
    snapshot,
    write_bodies,
)

READ, WRITE, ADMIN = SCOPE_READ, SCOPE_WRITE, SCOPE_ADMIN
PUBLIC = "public"  # no API key: authenticated otherwise, or by nobody

# The written-down truth: what each operation needs.
REQUIRED: dict[str, str] = {
    # CRM
    "POST /contacts": WRITE,
    "GET /contacts": READ,
    "PATCH /contacts/{contact_id}": WRITE,
    "GET /contacts/{contact_id}": READ,
    "GET /contacts/{contact_id}/timeline": READ,
    "POST /leads": WRITE,
    "GET /leads": READ,
    "PATCH /leads/{lead_id}": WRITE,
    "GET /leads/{lead_id}": READ,
    "POST /accounts": WRITE,
    "GET /accounts": READ,
    "PATCH /accounts/{account_id}": WRITE,
    "GET /accounts/{account_id}": READ,
    # matching: asking is a read; the rules are the administrator's
    "POST /match": READ,
    "GET /matching-rules": READ,
    "POST /matching-rules": ADMIN,
    "GET /matching-rules/{rule_id}": READ,
    "PUT /matching-rules/{rule_id}": ADMIN,
    "DELETE /matching-rules/{rule_id}": ADMIN,
    # loyalty: setting a program up and changing balances by hand is admin
    "POST /programs": ADMIN,
    "GET /programs/{program_id}": READ,
    "POST /members": WRITE,
    "GET /members/{member_id}": READ,
    "GET /members/{member_id}/wallet": READ,
    "GET /members/{member_id}/wallet/transactions": READ,
    "POST /members/{member_id}/adjustments": ADMIN,
    "POST /activities": ADMIN,
    "GET /activities/{activity_id}": READ,
    "POST /members/{member_id}/activities/{activity_id}/completions": WRITE,
    "POST /products": ADMIN,
    "GET /products/{product_id}": READ,
    "POST /members/{member_id}/orders": WRITE,
    "GET /orders/{order_id}": READ,
    "POST /orders/{order_id}/refund": WRITE,
    "POST /members/{member_id}/credit-purchases": WRITE,
    # payments: moving money back or settling it by hand is admin
    "POST /webhooks/stripe": PUBLIC,  # Stripe's signature, not a key
    "GET /transactions/{transaction_id}": READ,
    "POST /transactions/{transaction_id}/refunds": ADMIN,
    "POST /transactions/{transaction_id}/capture": ADMIN,
    "POST /transactions/{transaction_id}/cancel": ADMIN,
    "GET /invoices/{invoice_id}.pdf": READ,
    "GET /invoices/{invoice_id}": READ,
    "POST /invoices/{invoice_id}/refunds": ADMIN,
    # events: the organiser's set-up and cancellations are admin; selling and the door write
    "POST /events": ADMIN,
    "GET /events": READ,
    "PATCH /events/{event_id}": ADMIN,
    "GET /events/{event_id}": READ,
    "POST /events/{event_id}/items": ADMIN,
    "POST /events/{event_id}/questions": ADMIN,
    "POST /events/{event_id}/promo-codes": ADMIN,
    "GET /events/{event_id}/attendees": READ,
    "GET /checkouts/{checkout_id}": READ,
    "GET /attendees/{attendee_id}": READ,
    "POST /events/{event_id}/checkout": WRITE,
    "POST /events/{event_id}/waitlist": WRITE,
    "POST /check-ins": WRITE,
    "POST /attendees/{attendee_id}/check-in": WRITE,
    "POST /attendees/{attendee_id}/cancel": ADMIN,
}

# Addresses under /api/v1/ that are not operations of the document, and are public.
NOT_OPERATIONS = {
    "/openapi.json": 200,  # the document itself
    "/docs": 200,  # its interactive page
    "/": 404,  # the API's root: nothing there
}

PRINCIPALS = (
    "no key",
    "malformed key",
    "revoked key",
    "read key",
    "write key",
    "read+write key",
    "admin key",
)
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# Operations that would call Stripe if they ran: their "would write" check is not made.
CALLS_STRIPE = {
    "POST /members/{member_id}/credit-purchases",
    "POST /transactions/{transaction_id}/refunds",
    "POST /transactions/{transaction_id}/capture",
    "POST /transactions/{transaction_id}/cancel",
}

DOCUMENT = api_operations(api.get_openapi_schema())

pytestmark = pytest.mark.django_db


def expected(required: str, principal: ApiPrincipal) -> int | None:
    """401, 403, or None for "past authentication"."""
    if required == PUBLIC:
        return None
    if principal.scopes is None:
        return 401
    if ADMIN in principal.scopes or required in principal.scopes:
        return None
    return 403


def cells() -> list[Any]:
    # Every operation of the document, so a new one shows up as a failing cell.
    return [pytest.param(op, who, id=f"{op} | {who}") for op in DOCUMENT for who in PRINCIPALS]


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[World]:
    with shared_world(django_db_blocker) as built:
        yield built


def request(world: World, op: str, who: str, *, real_ids: bool, body: Any = None) -> Any:
    method, template = op.split(" ", 1)
    ids = {}
    for name in path_parameters(template):
        assert name in world.api_ids, f"no record for the path parameter {name!r} of {op}"
        ids[name] = world.api_ids[name] if real_ids else MISSING
    path = template.format(**ids)
    headers = world.principals[who].client_headers()
    if method in MUTATING:
        headers["Idempotency-Key"] = f"authz-{method}-{path}"[:200]
        return Client().generic(
            method,
            API_PREFIX + path,
            encode(body if body is not None else {}),
            content_type="application/json",
            headers=headers,
        )
    return Client().generic(method, API_PREFIX + path, headers=headers)


def problem_code(response: Any) -> tuple[int, str, str]:
    body = json.loads(response.content) if response.content else {}
    return response.status_code, response.get("Content-Type", ""), body.get("code", "")


# --- the table is the document ---------------------------------------------------------------


def test_every_documented_operation_has_a_required_scope() -> None:
    missing = sorted(set(DOCUMENT) - set(REQUIRED))
    assert not missing, f"write down the scope these operations need: {missing}"


def test_every_entry_names_an_operation_of_the_document() -> None:
    stale = sorted(set(REQUIRED) - set(DOCUMENT))
    assert not stale, f"these entries name operations the document no longer has: {stale}"


def test_every_api_address_is_a_documented_operation() -> None:
    """A route left out of the document (``include_in_schema=False``) would escape the
    matrix: every address under /api/v1/ is an operation or a known public page."""
    documented = {op.split(" ", 1)[1] for op in DOCUMENT} | set(NOT_OPERATIONS)
    routes = {r.template.removeprefix("/api/v1") or "/" for r in api_routes()}
    assert sorted(routes - documented) == []


def test_the_document_states_the_scope_of_the_table() -> None:
    stated = {op: o.get("x-required-scope", PUBLIC) for op, o in DOCUMENT.items()}
    assert stated == {op: REQUIRED.get(op) for op in DOCUMENT}


@pytest.mark.parametrize(("path", "status"), NOT_OPERATIONS.items())
def test_the_document_and_its_page_are_public(path: str, status: int) -> None:
    assert Client().get(API_PREFIX + path).status_code == status


# --- the cells -------------------------------------------------------------------------------


@pytest.mark.parametrize(("op", "who"), cells())
def test_cell(world: World, op: str, who: str) -> None:
    assert op in REQUIRED, f"{op} has no expected answer: write its scope in REQUIRED"
    principal = world.principals[who]
    refusal = expected(REQUIRED[op], principal)
    method = op.split(" ", 1)[0]
    if refusal is None:
        # Past authentication. A write is pointed at nothing (404) or sent an empty body
        # (422), so that it cannot act; a read is pointed at a real record.
        response = request(world, op, who, real_ids=method not in MUTATING)
        assert response.status_code not in (401, 403), response.content
        return
    body = write_bodies(world.values).get(op)
    before = snapshot() if method in MUTATING else None
    response = request(world, op, who, real_ids=True, body=body)
    code = "unauthorized" if refusal == 401 else "forbidden"
    assert problem_code(response) == (refusal, "application/problem+json", code)
    if before is not None:
        assert changed_tables(before, snapshot()) == []


MALFORMED = {
    "a scheme and no key": "Bearer",
    "another scheme": "Basic {key}",
    "the key without its scheme": "{key}",
    "the key with a character changed": "Bearer {key}x",
    "the key twice": "Bearer {key} {key}",
    "a key that is not ours": "Bearer tsk_" + "A" * 43,
}


@pytest.mark.parametrize("header", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_authorization_is_401(world: World, header: str) -> None:
    admin = world.principals["admin key"].authorization or ""
    sent = header.format(key=admin.removeprefix("Bearer "))
    response = Client().get(f"{API_PREFIX}/contacts", headers={"Authorization": sent})
    assert problem_code(response) == (401, "application/problem+json", "unauthorized")


def would_write() -> list[Any]:
    return [
        pytest.param(op, id=op)
        for op in DOCUMENT
        if op.split(" ", 1)[0] in MUTATING
        and REQUIRED.get(op) not in (PUBLIC, READ)  # a read sent as a POST writes nothing
        and op not in CALLS_STRIPE
    ]


@pytest.mark.parametrize("op", would_write())
def test_the_refused_body_would_have_written(world: World, op: str) -> None:
    """The check that a refused write changed nothing means something only if the same
    request, allowed, does write."""
    body = write_bodies(world.values).get(op)
    assert body is not None, f"give {op} a body in tests/support/authz.py write_bodies"
    before = snapshot()
    response = request(world, op, "admin key", real_ids=True, body=body)
    assert changed_tables(before, snapshot()) != [], response.content
