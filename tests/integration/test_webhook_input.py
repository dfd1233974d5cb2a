"""A signed webhook body that is not a well-formed Stripe event gets an answer, never a
500: it is refused when it is not an event, and stored safely when it only holds text
the database cannot keep as sent."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import pytest
from django.test import Client

from tessera.billing.models import StripeEvent
from tests.support.api import assert_problem
from tests.support.stripe import WEBHOOK_SECRET, signed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _secret(settings: Any) -> None:
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET


def deliver(event: Any) -> Any:
    payload, signature = signed(event)
    return Client().post(
        "/api/v1/webhooks/stripe",
        payload,
        content_type="application/json",
        headers={"Stripe-Signature": signature},
    )


def event(**kw: Any) -> dict[str, Any]:
    return {"id": "evt_1", "type": "payment_intent.succeeded", "created": 1,
            "data": {"object": {"id": "pi_1"}}, **kw}  # fmt: skip


@pytest.mark.parametrize(
    "body",
    [
        [event()],
        "evt_1",
        {"type": "payment_intent.succeeded", "data": {"object": {}}},
        event(id=7),
        event(type=""),
        event(data={"object": []}),
        event(data=None),
        event(created={}),
        event(created=True),
    ],
)
def test_a_signed_body_that_is_not_an_event_is_400(body: Any) -> None:
    assert_problem(deliver(body), 400, "invalid_event")


def test_a_refused_event_is_not_stored() -> None:
    deliver(event(id=7))
    assert StripeEvent.objects.count() == 0


def test_an_event_nesting_too_deeply_is_400() -> None:
    # Built by hand: json.dumps itself refuses to write such depth.
    raw = b'{"id": "evt_deep", "type": "x", "data": {"object": ' + b'{"a": ' * 3000
    raw += b"1" + b"}" * 3000 + b"}}"
    timestamp = int(time.time())
    mac = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256)
    r = Client().post(
        "/api/v1/webhooks/stripe", raw, content_type="application/json",
        headers={"Stripe-Signature": f"t={timestamp},v1={mac.hexdigest()}"},
    )  # fmt: skip
    assert_problem(r, 400, "invalid_event")


def test_an_event_with_a_nul_is_stored_without_it() -> None:
    deliver(event(data={"object": {"id": "pi_1", "description": "a\u0000b"}}))
    stored = StripeEvent.objects.get(pk="evt_1").payload
    assert stored["data"]["object"]["description"] == "ab"


def test_an_event_with_a_lone_surrogate_is_answered() -> None:
    r = deliver(event(data={"object": {"id": "pi_1", "description": "a\udb3ab"}}))
    assert r.status_code == 200, r.content


@pytest.mark.parametrize(
    "obj",
    [
        {"id": "pi_1", "metadata": "tessera_transaction"},
        {"id": ["pi_1"], "amount": "100"},
        {"id": "pi_1", "last_payment_error": "declined"},
    ],
)
def test_fields_of_the_wrong_type_read_as_absent(obj: dict[str, Any]) -> None:
    r = deliver(event(data={"object": obj}))
    assert r.status_code == 200, r.content


@pytest.mark.parametrize("kind", ["charge.refunded", "charge.refund.updated"])
def test_refund_events_of_the_wrong_shape_are_answered(kind: str) -> None:
    obj = {"id": "ch_1", "refunds": {"data": ["re_1", {"id": 5}, {"id": "re_2", "amount": "x"}]}}
    r = deliver(event(type=kind, data={"object": obj}))
    assert r.status_code == 200, r.content


def test_a_dispute_with_a_string_metadata_is_answered() -> None:
    obj = {"id": "dp_1", "payment_intent": "pi_1", "metadata": "x", "amount": "12"}
    r = deliver(event(type="charge.dispute.created", data={"object": obj}))
    assert r.status_code == 200, r.content
