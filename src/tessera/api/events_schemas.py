"""Request and response bodies of the events endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from ninja import Schema
from pydantic import ConfigDict, Field, Tag, WithJsonSchema, model_validator

from tessera.api.schemas import (
    Currency,
    Email,
    Input,
    NonBlank,
    PageQuery,
    Text,
    Timestamp,
    by_tag,
    check_exactly_one,
    exactly_one_of,
)

Id = Annotated[Text, Field(max_length=40)]
# Any IANA zone this machine's tz database knows, stated as the enum it is.
TimeZone = Annotated[
    str,
    WithJsonSchema(
        {
            "type": "string",
            "enum": sorted(available_timezones()),
            "description": "an IANA time zone, e.g. Europe/Berlin",
        }
    ),
]
Kind = Literal["ticket", "addon", "donation", "product"]
QuestionType = Literal[
    "text", "number", "select", "multiselect", "checkbox", "date", "email", "phone"
]


class EventIn(Input):
    name: NonBlank = Field(..., max_length=200)
    description: Text = Field("", max_length=10_000)
    starts_at: Timestamp
    ends_at: Timestamp = Field(..., description="after starts_at")
    timezone: TimeZone
    currency: Currency
    capacity: int | None = Field(None, ge=0, le=10_000_000, description="places; none: no limit")
    venue: Text = Field("", max_length=255)
    status: Literal["draft", "live", "closed", "cancelled"] = "live"
    program_id: Id | None = Field(None, description="the loyalty program attendance earns in")
    attendance_points: int | None = Field(
        None, ge=0, le=10**9, description="default: the program's attendance_points"
    )
    waitlist_offer_hours: int = Field(48, ge=1, le=24 * 60)


class EventPatch(Input):
    name: NonBlank | None = Field(None, max_length=200)
    description: Text | None = Field(None, max_length=10_000)
    starts_at: Timestamp | None = None
    ends_at: Timestamp | None = None
    venue: Text | None = Field(None, max_length=255)
    capacity: int | None = Field(None, ge=0, le=10_000_000)
    status: Literal["draft", "live", "closed", "cancelled"] | None = None
    attendance_points: int | None = Field(None, ge=0, le=10**9)


class EventItemIn(Input):
    name: NonBlank = Field(..., max_length=200)
    description: Text = Field("", max_length=5000)
    kind: Kind = "ticket"
    price: int = Field(..., ge=0, le=10**10, description="minor units; a donation's minimum")
    tax_rate_bp: int = Field(0, ge=0, le=10_000, description="basis points: 1900 = 19%")
    tax_inclusive: bool = True
    capacity: int | None = Field(None, ge=0, le=10_000_000)
    sales_start: Timestamp | None = None
    sales_end: Timestamp | None = Field(None, description="after sales_start")
    max_per_order: int | None = Field(None, ge=1, le=1000)
    active: bool = True


class EventQuestionIn(Input):
    label: NonBlank = Field(..., max_length=500)
    type: QuestionType
    required: bool = False
    options: list[Annotated[NonBlank, Field(max_length=200)]] | None = Field(
        None, max_length=100, description="select and multiselect only (at least two)"
    )
    item_ids: list[Id] | None = Field(None, max_length=100, description="none: every item")
    per_attendee: bool = Field(True, description="false: asked once per order")


class PromoCodeIn(Input):
    """One of `percent_off` or `amount_off`."""

    model_config = ConfigDict(json_schema_extra=exactly_one_of("percent_off", "amount_off"))

    code: Text = Field(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    percent_off: int | None = Field(None, ge=1, le=100)
    amount_off: int | None = Field(None, ge=1, le=10**10)
    max_uses: int | None = Field(None, ge=1, le=10**9)
    valid_from: Timestamp | None = None
    valid_until: Timestamp | None = Field(None, description="after valid_from")
    item_ids: list[Id] | None = Field(None, max_length=100, description="none: every item")

    @model_validator(mode="after")
    def _one_discount(self) -> PromoCodeIn:
        check_exactly_one(self, "percent_off", "amount_off")
        return self


class BuyerIn(Input):
    first_name: Text = Field("", max_length=120)
    last_name: NonBlank = Field(..., max_length=120)
    email: Email | None = None
    phone: Text = Field("", max_length=40)
    company: Text = Field("", max_length=255)


class CheckoutLineIn(Input):
    item_id: Id
    quantity: int = Field(1, ge=1, le=1000)
    amount: int | None = Field(None, ge=0, le=10**10, description="a donation's own amount")


class CheckoutAnswerIn(Input):
    question_id: Id
    value: Any = Field(..., description="text, number, option(s), true/false or a date")


class CheckoutAttendeeIn(BuyerIn):  # a person, as the buyer is, and what they hold
    items: list[CheckoutLineIn] = Field(..., min_length=1, max_length=50)
    answers: list[CheckoutAnswerIn] = Field(default_factory=list, max_length=100)


class CheckoutCardIn(Input):
    method: Literal["card"]
    payment_method_id: Text = Field(..., max_length=255, pattern=r"^pm_[A-Za-z0-9_]+$")


class CheckoutWalletIn(Input):
    method: Literal["wallet"]
    member_id: Id


CheckoutPaymentIn = Annotated[
    Annotated[CheckoutCardIn, Tag("method=card")]
    | Annotated[CheckoutWalletIn, Tag("method=wallet")],
    by_tag("method", ["card", "wallet"]),
]


class CheckoutBodyIn(Input):
    buyer: BuyerIn = Field(..., description="billed; matched to a contact or lead, or created")
    attendees: list[CheckoutAttendeeIn] = Field(..., min_length=1, max_length=50)
    answers: list[CheckoutAnswerIn] = Field(
        default_factory=list, max_length=100, description="questions asked once per order"
    )
    promo_code: Text | None = Field(None, max_length=64)
    payment: CheckoutPaymentIn | None = Field(None, description="null only when the total is zero")
    waitlist_token: Text | None = Field(None, max_length=100)


class WaitlistIn(Input):
    item_id: Id
    person: BuyerIn


class CheckInIn(Input):
    code: Text = Field(..., min_length=1, max_length=200)
    event_id: Id | None = Field(None, description="the event scanning: wrong_event otherwise")


class AttendeeCancelIn(Input):
    refund: bool = False


class InvoiceRefundIn(Input):
    amount: int | None = Field(None, ge=1, le=10**12, description="minor units; default all")
    reason: Text | None = Field(None, max_length=255)


class AttendeesQuery(PageQuery):
    status: Literal["pending", "registered", "waitlisted", "cancelled", "checked_in"] | None = None
    format: Literal["json", "csv"] = "json"


# --- responses ---------------------------------------------------------------------------


class EventItemOut(Schema):
    id: str
    name: str
    description: str
    kind: str
    price: int
    tax_rate_bp: int
    tax_inclusive: bool
    capacity: int | None
    available: int | None
    sales_start: datetime | None
    sales_end: datetime | None
    max_per_order: int | None
    active: bool


class EventOut(Schema):
    id: str
    name: str
    description: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    venue: str
    currency: str
    capacity: int | None
    available: int | None
    status: str
    program_id: str | None
    attendance_points: int
    items: list[EventItemOut]


class EventQuestionOut(Schema):
    id: str
    label: str
    type: str
    required: bool
    options: list[str]
    item_ids: list[str]
    per_attendee: bool


class PromoCodeOut(Schema):
    id: str
    code: str
    percent_off: int | None
    amount_off: int | None
    max_uses: int | None
    used: int
    valid_from: datetime | None
    valid_until: datetime | None
    item_ids: list[str]


class AttendeeOut(Schema):
    id: str
    event_id: str
    checkout_id: str
    contact_id: str
    lead_id: str | None
    ticket_id: str
    status: str
    code: str | None = Field(None, description="the signed code in the ticket's QR")
    registered_at: datetime | None
    checked_in_at: datetime | None
    cancelled_at: datetime | None


class CheckoutLineOut(Schema):
    id: str
    item_id: str
    description: str
    quantity: int
    unit_price: int
    discount: int
    tax: int
    amount: int
    attendee_id: str


class CheckoutInvoiceOut(Schema):
    id: str
    number: str | None
    status: str
    total: int
    currency: str
    bill_to_contact_id: str
    lines: list[CheckoutLineOut]


class CheckoutTransactionOut(Schema):
    id: str
    status: str
    amount: int
    currency: str
    payment_method_id: str | None
    stripe_payment_intent_id: str | None


class CheckoutOut(Schema):
    id: str
    event_id: str
    status: Literal["pending", "requires_action", "paid", "free", "failed", "expired"]
    contact_id: str
    total: int
    currency: str
    payment: str
    points: int
    attendees: list[AttendeeOut]
    invoice: CheckoutInvoiceOut | None
    transaction: CheckoutTransactionOut | None
    client_secret: str | None = None
    hold_expires_at: datetime | None
    failure_code: str
    created_at: datetime


class WaitlistOut(Schema):
    id: str
    event_id: str
    item_id: str
    contact_id: str
    status: str
    created_at: datetime


class CheckInOut(Schema):
    attendee_id: str
    checked_in_at: datetime
    points_earned: int


class CreditNoteSummaryOut(Schema):
    id: str
    number: str | None
    total: int
    currency: str
    credits_invoice_id: str | None


class InvoiceRefundOut(Schema):
    credit_note: CreditNoteSummaryOut
    refund_id: str | None
    refund_status: str | None
    amount: int
    points_returned: int


class AttendeeCancelOut(Schema):
    attendee: AttendeeOut
    refund: InvoiceRefundOut | None
