"""Which API operations commit their own steps instead of running in the request-wide
transaction: exactly those that call Stripe between commits, each marked on its handler
with ``@own_transactions``. The operations are read from the OpenAPI document, so a new
operation that calls Stripe cannot be left in one transaction unnoticed: it changes the
set below."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client, RequestFactory

from tessera.api.transactions import handler_for, runs_own_transactions

API = "/api/v1"

# Every operation that crosses Stripe: payments, refunds, captures, cancels of a hold.
OWN_TRANSACTIONS = {
    "POST /members/{member_id}/credit-purchases",
    "POST /transactions/{transaction_id}/refunds",
    "POST /transactions/{transaction_id}/capture",
    "POST /transactions/{transaction_id}/cancel",
    "POST /events/{event_id}/checkout",
    "POST /attendees/{attendee_id}/cancel",
    "POST /invoices/{invoice_id}/refunds",
}


@pytest.fixture(scope="module")
def operations() -> list[tuple[str, str]]:
    schema = json.loads(Client().get(f"{API}/openapi.json").content)
    return [
        (method.upper(), path.removeprefix(API))
        for path, ops in schema["paths"].items()
        for method in ops
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def request_for(method: str, path: str) -> object:
    filled = re.sub(r"{[^}]+}", "x_1", path)
    return RequestFactory().generic(method, API + filled)


def test_exactly_the_operations_that_call_stripe_run_their_own_transactions(
    operations: list[tuple[str, str]],
) -> None:
    marked = {
        f"{method} {path}"
        for method, path in operations
        if runs_own_transactions(request_for(method, path))  # type: ignore[arg-type]
    }
    assert marked == OWN_TRANSACTIONS


def test_every_operation_is_found_behind_its_url(operations: list[tuple[str, str]]) -> None:
    lost = [
        f"{method} {path}"
        for method, path in operations
        if handler_for(request_for(method, path)) is None  # type: ignore[arg-type]
    ]
    assert lost == []


def test_a_read_on_a_marked_path_is_not_marked() -> None:
    request = RequestFactory().get(f"{API}/events/x_1/checkout")
    assert runs_own_transactions(request) is False


def test_a_path_outside_the_api_is_not_marked() -> None:
    assert runs_own_transactions(RequestFactory().post("/no/such/page")) is False
