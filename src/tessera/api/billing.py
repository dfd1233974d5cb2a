"""Stripe webhooks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from tessera.api.auth import admin_auth, read_auth, request_key
from tessera.api.schemas import ERRORS, Input, Text
from tessera.api.transactions import own_transactions
from tessera.billing import webhooks
from tessera.billing.models import Transaction
from tessera.billing.refunds import refund_transaction
from tessera.billing.services import cancel_transaction, capture_transaction, get_transaction

router = Router(tags=["Stripe"])
Handler = TypeVar("Handler", bound=Callable[..., Any])


class WebhookOut(Schema):
    received: bool
    duplicate: bool


# The webhook reads its raw body itself (the signature is over the exact bytes), so the
# document states the event's shape and the signature header by hand.
STRIPE_EVENT_SCHEMA = {
    "type": "object",
    "description": "A Stripe event, as Stripe sends it (more fields are allowed)",
    "required": ["id", "type", "data"],
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": webhooks.EVENT_ID_MAX},
        "type": {"type": "string", "minLength": 1, "maxLength": webhooks.EVENT_TYPE_MAX},
        "created": {"type": "integer"},
        "data": {
            "type": "object",
            "required": ["object"],
            "properties": {"object": {"type": "object"}},
        },
    },
}
WEBHOOK_OPENAPI = {
    "parameters": [
        {
            "in": "header",
            "name": "Stripe-Signature",
            "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": 2000},
            "description": "Stripe's signature of the raw body with the webhook secret",
        }
    ],
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": STRIPE_EVENT_SCHEMA}},
    },
}


@router.post(
    "/webhooks/stripe",
    response={200: WebhookOut, **ERRORS},
    auth=None,
    openapi_extra=WEBHOOK_OPENAPI,
)
def stripe_webhook(request: HttpRequest) -> dict[str, bool]:
    """Verified against `STRIPE_WEBHOOK_SECRET` on the raw body (400 `invalid_signature`
    otherwise; 400 `invalid_event` for a signed body that is not an event); an event
    already processed answers 200 and changes nothing."""
    applied = webhooks.receive(request.body, request.headers.get("Stripe-Signature"))
    return {"received": True, "duplicate": not applied}


class RefundOut(Schema):
    id: str
    transaction_id: str
    amount: int
    reason: str
    status: str
    created_at: datetime


class TransactionOut(Schema):
    id: str
    contact_id: str
    amount: int
    currency: str
    status: str
    purpose: str
    purpose_id: str
    payment_method_id: str | None
    stripe_payment_intent_id: str | None
    failure_code: str
    refunded_amount: int
    disputed: bool
    refunds: list[RefundOut]
    created_at: datetime

    @staticmethod
    def resolve_refunds(obj: Transaction) -> list[object]:
        return list(obj.refunds.order_by("created_at"))


class RefundIn(Input):
    amount: int | None = Field(None, ge=1, le=10**12, description="minor units; default all")
    reason: Text | None = Field(None, max_length=255)


@router.get(
    "/transactions/{transaction_id}", response={200: TransactionOut, **ERRORS}, auth=read_auth
)
def get_payment(request: HttpRequest, transaction_id: str) -> Transaction:
    return get_transaction(transaction_id)


@router.post(
    "/transactions/{transaction_id}/refunds",
    response={201: RefundOut, **ERRORS},
    auth=admin_auth,
    url_name="transaction_refund",
)
@own_transactions
def refund(request: HttpRequest, transaction_id: str, payload: RefundIn) -> Status:
    """Refund part or all of a captured payment; 409 `refund_exceeds_remaining` beyond what
    is left. What the payment bought is reversed (a top-up's points are taken back)."""
    return Status(
        201,
        refund_transaction(
            transaction_id,
            amount=payload.amount,
            reason=payload.reason or "",
            request_key=request_key(request),
        ),
    )


def _authorisation_action(path: str, *, url_name: str) -> Callable[[Handler], Handler]:
    """The route of an admin action on an authorised payment, answered with the payment."""
    return router.post(
        path, response={200: TransactionOut, **ERRORS}, auth=admin_auth, url_name=url_name
    )


@_authorisation_action("/transactions/{transaction_id}/capture", url_name="transaction_capture")
@own_transactions
def capture(request: HttpRequest, transaction_id: str) -> Transaction:
    """Capture an authorised payment (idempotent)."""
    return capture_transaction(transaction_id)


@_authorisation_action("/transactions/{transaction_id}/cancel", url_name="transaction_cancel")
@own_transactions
def cancel(request: HttpRequest, transaction_id: str) -> Transaction:
    """Release an authorisation that will not be captured (idempotent)."""
    return cancel_transaction(transaction_id)
