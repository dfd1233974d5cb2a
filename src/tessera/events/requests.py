"""What a checkout asks for and what it answers, as typed values: the API builds these from
its validated body, and tests and the portal build them directly."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PersonIn:
    first_name: str
    last_name: str
    email: str = ""
    phone: str = ""
    company: str = ""

    def as_record(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v}


@dataclass(frozen=True)
class LineIn:
    item_id: str
    quantity: int = 1
    amount: int | None = None  # a donation's chosen amount (at least the item's price)


@dataclass(frozen=True)
class AnswerIn:
    question_id: str
    value: Any


@dataclass(frozen=True)
class AttendeeIn:
    person: PersonIn
    items: tuple[LineIn, ...]
    answers: tuple[AnswerIn, ...] = ()


@dataclass(frozen=True)
class PaymentIn:
    method: str  # "card" | "wallet"
    payment_method_id: str = ""
    member_id: str = ""


@dataclass(frozen=True)
class CheckoutIn:
    event_id: str
    buyer: PersonIn
    attendees: tuple[AttendeeIn, ...]
    answers: tuple[AnswerIn, ...] = ()  # questions asked once per order
    promo_code: str | None = None
    payment: PaymentIn | None = None
    waitlist_token: str | None = None


@dataclass
class CheckoutOutcome:
    """How a checkout request ended: the checkout, and for 3-D Secure the client secret."""

    checkout_id: str
    status: str
    client_secret: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    checkout: Any = None  # the Checkout with its records loaded, when the saga has them
