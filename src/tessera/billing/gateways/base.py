"""What a payment gateway must do for us. Every call that creates or changes something
takes an idempotency key derived from our own record, so a retry can never charge twice."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Protocol


class GatewayUnavailable(Exception):
    """The gateway could not be reached (after retries); the outcome is unknown."""


class GatewayRejected(Exception):
    """The gateway answered and refused the request itself (a 4xx other than a card
    decline): the same request again would be refused again."""


class PaymentMethodUnusable(Exception):
    """The payment method id names nothing the gateway can charge (no such payment method,
    or one attached to another customer): nothing was declined; the request is wrong."""


class CardRejected(Exception):
    """The card was declined when attached."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class CardDetails:
    payment_method_id: str
    brand: str
    last4: str
    exp_month: int | None
    exp_year: int | None
    holder_name: str = ""
    billing: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PaymentResult:
    # succeeded | requires_capture | requires_action | processing | failed | canceled
    status: str
    payment_intent_id: str | None
    amount: int = 0
    client_secret: str | None = None
    failure_code: str = ""
    failure_message: str = ""


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    # pending | requires_action | succeeded | failed | canceled
    status: str
    amount: int
    failure_reason: str = ""


class Gateway(Protocol):
    def ensure_customer(self, *, email: str, name: str, idempotency_key: str) -> str: ...

    def attach_card(self, payment_method_id: str, customer_id: str) -> CardDetails: ...

    def create_payment(
        self,
        *,
        amount: int,
        currency: str,
        customer_id: str,
        payment_method_id: str,
        capture: bool,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> PaymentResult: ...

    def capture(self, payment_intent_id: str, *, idempotency_key: str) -> PaymentResult: ...

    def cancel(self, payment_intent_id: str, *, idempotency_key: str) -> PaymentResult: ...

    def refund(
        self,
        payment_intent_id: str,
        amount: int,
        *,
        idempotency_key: str,
        metadata: dict[str, str] | None = None,
    ) -> RefundResult: ...

    def retrieve_refund(self, refund_id: str) -> RefundResult: ...

    def find_refund(self, payment_intent_id: str, refund_id: str) -> RefundResult | None: ...

    def retrieve(self, payment_intent_id: str) -> PaymentResult: ...

    def find_by_transaction(self, transaction_id: str) -> PaymentResult | None: ...

    def find_by_transactions(
        self, transaction_ids: Collection[str]
    ) -> dict[str, PaymentResult]: ...
