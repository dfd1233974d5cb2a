"""What a checkout asks for and what it answers, as typed values: the API builds these from
its validated body, and tests and the portal build them directly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tessera.crm.inputs import ContactInput

if TYPE_CHECKING:
    from tessera.events.models import Checkout


@dataclass(frozen=True)
class PersonIn:
    first_name: str
    last_name: str
    email: str = ""
    phone: str = ""
    company: str = ""

    def as_contact(self) -> ContactInput:
        """The person as the CRM resolves one (a missing field is blank)."""
        return ContactInput(
            first_name=self.first_name or "",
            last_name=self.last_name or "",
            email=self.email or "",
            phone=self.phone or "",
            company=self.company or "",
        )


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


@dataclass(frozen=True)
class CheckoutOutcome:
    """How a checkout request ended: the checkout, and for 3-D Secure the client secret."""

    checkout_id: str
    status: str
    client_secret: str | None = None
    checkout: Checkout | None = None  # with its records loaded, when the saga has them
