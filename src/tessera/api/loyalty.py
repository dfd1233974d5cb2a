"""Loyalty endpoints: programs, members and wallets, activities, products and orders."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from django.http import HttpRequest
from ninja import Body, Query, Router, Schema, Status
from pydantic import AfterValidator, ConfigDict, Field, Tag, model_validator

from tessera.api.auth import admin_auth, read_auth, request_key, write_auth
from tessera.api.crm import PersonIn, PersonOut
from tessera.api.schemas import (
    ERRORS,
    Currency,
    Email,
    Input,
    NonBlank,
    PageOut,
    PageQuery,
    PointsDelta,
    Text,
    Timestamp,
    by_tag,
    check_exactly_one,
    exactly_one_of,
    reject_unknown_query,
)
from tessera.api.transactions import own_transactions
from tessera.core.pagination import paginate
from tessera.crm.inputs import ContactInput
from tessera.loyalty import activities, adjustments, credit, ordering, programs, wallet
from tessera.loyalty.activities import ActivitySpec, CompletionResult
from tessera.loyalty.models import Activity, Member, Order, Product, Program
from tessera.loyalty.ordering import OrderLineSpec, ProductSpec
from tessera.loyalty.programs import ProgramSpec
from tessera.loyalty.wallet import WalletBalance

router = Router(tags=["Loyalty"])
ERRORS_402 = {**ERRORS, 402: ERRORS[422]}


class ProgramIn(Input):
    name: NonBlank = Field(..., max_length=200)
    points_per_unit: int = Field(..., ge=1, le=1_000_000, description="points per 1 major unit")
    currency: Currency
    low_balance_threshold: int = Field(0, ge=0, le=10**12)
    points_expire_after_days: int | None = Field(None, ge=1, le=36_500)
    attendance_points: int | None = Field(None, ge=0, le=10**9)
    admin_email: Email | None = None


class ProgramOut(Schema):
    id: str
    name: str
    points_per_unit: int
    currency: str
    low_balance_threshold: int
    points_expire_after_days: int | None
    attendance_points: int
    created_at: datetime


class MemberIn(Input):
    """One of `contact` (details matched to an existing person, or a new contact) or
    `contact_id`, not both."""

    model_config = ConfigDict(json_schema_extra=exactly_one_of("contact", "contact_id"))

    program_id: Text = Field(..., max_length=40)
    contact: PersonIn | None = Field(
        None, description="matched to an existing contact or lead, or created"
    )
    contact_id: Text | None = Field(None, max_length=40)

    @model_validator(mode="after")
    def _one_person(self) -> MemberIn:
        check_exactly_one(self, "contact", "contact_id")
        return self


class WalletOut(Schema):
    balance: int
    currency: Literal["PTS"] = "PTS"
    low_balance_threshold: int


class MemberOut(Schema):
    id: str
    program_id: str
    contact_id: str
    contact: PersonOut
    wallet: WalletOut
    created_at: datetime

    @staticmethod
    def resolve_wallet(obj: Member) -> WalletBalance:
        return wallet.wallet_balance(obj)


class WalletTransactionOut(Schema):
    id: str
    type: str
    label: str
    points: int
    balance_after: int
    reference: str
    detail: dict[str, Any]
    created_at: datetime


class AdjustmentIn(Input):
    points: PointsDelta
    reason: NonBlank = Field(..., max_length=500)


Option = Annotated[NonBlank, Field(max_length=200)]


def _distinct(options: list[str] | None) -> list[str] | None:
    if options is not None and len(set(options)) != len(options):
        raise ValueError("options must be distinct")
    return options


Options = Annotated[list[Option], AfterValidator(_distinct)]


class _ActivityBase(Input):
    program_id: Text = Field(..., max_length=40)
    title: NonBlank = Field(..., max_length=200)
    points: int = Field(..., ge=0, le=10**9)
    starts_at: Timestamp | None = None
    ends_at: Timestamp | None = Field(None, description="after starts_at")


class QuestionIn(_ActivityBase):
    """A question: the member's answer earns the points when it is the correct one."""

    kind: Literal["question"]
    question: NonBlank = Field(..., max_length=5000)
    options: Options | None = Field(
        None, min_length=2, max_length=50, json_schema_extra={"uniqueItems": True},
        description="choices offered; the correct option must be one of them",
    )  # fmt: skip
    correct_option: Option


class VoteIn(_ActivityBase):
    """A vote: any of its options earns the points."""

    kind: Literal["vote"]
    question: NonBlank = Field(..., max_length=5000)
    options: Options = Field(
        ..., min_length=2, max_length=50, json_schema_extra={"uniqueItems": True}
    )


class VideoIn(_ActivityBase):
    """A video: watching at least `min_watch_seconds` earns the points."""

    kind: Literal["video"]
    video_url: Text = Field(..., max_length=200, pattern=r"^https?://[^\s/$.?#][^\s]*$")
    min_watch_seconds: int = Field(0, ge=0, le=86_400)


ActivityIn = Annotated[
    Annotated[QuestionIn, Tag("kind=question")]
    | Annotated[VoteIn, Tag("kind=vote")]
    | Annotated[VideoIn, Tag("kind=video")],
    by_tag("kind", ["question", "vote", "video"]),
]


class ActivityOut(Schema):
    id: str
    program_id: str
    kind: str
    title: str
    points: int
    question: str
    options: list[str]
    video_url: str
    min_watch_seconds: int
    starts_at: datetime | None
    ends_at: datetime | None
    active: bool


class CompletionIn(Input):
    answer: Text | None = Field(None, max_length=500)
    option: Text | None = Field(None, max_length=200)
    watched_seconds: int | None = Field(None, ge=0, le=10**7)


# Rendered from a CompletionResult (no docstring here: it would enter the API document).
class CompletionOut(Schema):
    id: str
    activity_id: str
    member_id: str
    correct: bool
    points_earned: int
    wallet_transaction: WalletTransactionOut | None
    balance_after: int
    created_at: datetime

    @staticmethod
    def resolve_id(obj: CompletionResult) -> str:
        return str(obj.completion.pk)

    @staticmethod
    def resolve_activity_id(obj: CompletionResult) -> str:
        return str(obj.completion.activity_id)

    @staticmethod
    def resolve_member_id(obj: CompletionResult) -> str:
        return str(obj.completion.member_id)

    @staticmethod
    def resolve_correct(obj: CompletionResult) -> bool:
        return obj.completion.correct

    @staticmethod
    def resolve_points_earned(obj: CompletionResult) -> int:
        return obj.completion.points_awarded

    @staticmethod
    def resolve_created_at(obj: CompletionResult) -> datetime:
        return obj.completion.created_at


class ProductIn(Input):
    program_id: Text = Field(..., max_length=40)
    name: NonBlank = Field(..., max_length=200)
    description: Text | None = Field(None, max_length=5000)
    price_points: int = Field(..., ge=1, le=10**9)
    stock: int | None = Field(None, ge=0, le=10**9)
    active: bool = True


class ProductOut(Schema):
    id: str
    program_id: str
    name: str
    description: str
    price_points: int
    stock: int | None
    active: bool


class OrderLineIn(Input):
    product_id: Text = Field(..., max_length=40)
    quantity: int = Field(..., ge=1, le=10_000)


class OrderIn(Input):
    lines: list[OrderLineIn] = Field(..., min_length=1, max_length=100)


class OrderLineOut(Schema):
    product_id: str
    quantity: int
    unit_points: int


class OrderOut(Schema):
    id: str
    member_id: str
    status: str
    total_points: int
    lines: list[OrderLineOut]
    wallet_transaction: WalletTransactionOut | None
    refund_transaction: WalletTransactionOut | None
    balance_after: int
    created_at: datetime
    refunded_at: datetime | None

    @staticmethod
    def resolve_lines(obj: Order) -> list[Any]:
        return list(obj.lines.all())


@router.post("/programs", response={201: ProgramOut, **ERRORS}, auth=admin_auth)
def create_program(request: HttpRequest, payload: ProgramIn) -> Status:
    return Status(201, programs.create_program(ProgramSpec(**payload.model_dump())))


@router.get("/programs/{program_id}", response={200: ProgramOut, **ERRORS}, auth=read_auth)
def get_program(request: HttpRequest, program_id: str) -> Program:
    return programs.get_program(program_id)


@router.post("/members", response={200: MemberOut, 201: MemberOut, **ERRORS}, auth=write_auth)
def enroll(request: HttpRequest, payload: MemberIn) -> Status:
    """Enrol a person. `contact` details go through duplicate matching (an existing
    contact is reused); 200 with the existing membership if they are already enrolled."""
    member, created = programs.enroll_member(
        payload.program_id,
        contact=ContactInput(**payload.contact.model_dump()) if payload.contact else None,
        contact_id=payload.contact_id,
    )
    # Read back with the program, contact and wallet the answer shows.
    return Status(201 if created else 200, programs.get_member(member.pk))


@router.get("/members/{member_id}", response={200: MemberOut, **ERRORS}, auth=read_auth)
def get_member(request: HttpRequest, member_id: str) -> Member:
    return programs.get_member(member_id)


@router.get("/members/{member_id}/wallet", response={200: WalletOut, **ERRORS}, auth=read_auth)
def get_wallet(request: HttpRequest, member_id: str) -> WalletBalance:
    return wallet.wallet_balance(programs.get_member(member_id))


@router.get(
    "/members/{member_id}/wallet/transactions",
    response={200: PageOut[WalletTransactionOut], **ERRORS},
    auth=read_auth,
)
def wallet_transactions(request: HttpRequest, member_id: str, q: Query[PageQuery]) -> Any:
    """Every point earned and spent, newest first."""
    reject_unknown_query(request, PageQuery)
    transactions = wallet.wallet_transactions(programs.get_member(member_id))
    return paginate(transactions, limit=q.limit, cursor=q.cursor)


@router.post(
    "/members/{member_id}/adjustments",
    response={201: WalletTransactionOut, **ERRORS_402},
    auth=admin_auth,
)
def adjust(request: HttpRequest, member_id: str, payload: AdjustmentIn) -> Status:
    wtx = adjustments.adjust_points(
        member_id,
        points=payload.points,
        reason=payload.reason,
        by=str(getattr(request, "auth", "")),
    )
    return Status(201, wtx)


@router.post("/activities", response={201: ActivityOut, **ERRORS}, auth=admin_auth)
def create_activity(request: HttpRequest, payload: Body[ActivityIn]) -> Status:
    return Status(201, activities.create_activity(ActivitySpec(**payload.model_dump())))


@router.get("/activities/{activity_id}", response={200: ActivityOut, **ERRORS}, auth=read_auth)
def get_activity(request: HttpRequest, activity_id: str) -> Activity:
    return activities.get_activity(activity_id)


@router.post(
    "/members/{member_id}/activities/{activity_id}/completions",
    response={201: CompletionOut, **ERRORS},
    auth=write_auth,
)
def complete(
    request: HttpRequest, member_id: str, activity_id: str, payload: CompletionIn
) -> Status:
    """Complete an activity once; a second completion is 409 `already_completed`. A wrong
    answer is recorded and earns nothing."""
    result = activities.complete_activity(
        member_id, activity_id, answer=payload.answer, option=payload.option,
        watched_seconds=payload.watched_seconds,
    )  # fmt: skip
    return Status(201, result)


@router.post("/products", response={201: ProductOut, **ERRORS}, auth=admin_auth)
def create_product(request: HttpRequest, payload: ProductIn) -> Status:
    return Status(201, ordering.create_product(ProductSpec(**payload.model_dump())))


@router.get("/products/{product_id}", response={200: ProductOut, **ERRORS}, auth=read_auth)
def get_product(request: HttpRequest, product_id: str) -> Product:
    return ordering.get_product(product_id)


@router.post("/members/{member_id}/orders", response={201: OrderOut, **ERRORS_402}, auth=write_auth)
def place_order(request: HttpRequest, member_id: str, payload: OrderIn) -> Status:
    """Pay from the wallet. 402 `insufficient_balance` if it does not cover the order
    (nothing is charged; the system admin is emailed); 409 `sold_out` if stock is short."""
    lines = [OrderLineSpec(line.product_id, line.quantity) for line in payload.lines]
    return Status(201, ordering.place_order(member_id, lines).order)


@router.get("/orders/{order_id}", response={200: OrderOut, **ERRORS}, auth=read_auth)
def get_order(request: HttpRequest, order_id: str) -> Order:
    return ordering.get_order(order_id)


@router.post("/orders/{order_id}/refund", response={200: OrderOut, **ERRORS}, auth=write_auth)
def refund(request: HttpRequest, order_id: str) -> Order:
    """Return the order's points and stock; once (a second refund is 409)."""
    return ordering.refund_order(order_id).order


class CreditPurchaseIn(Input):
    amount: int = Field(..., ge=1, le=10**9, description="minor units, e.g. 2500 = 25.00")
    currency: Currency
    payment_method_id: Text = Field(
        ..., min_length=3, max_length=255, pattern=r"^pm_[A-Za-z0-9_]+$"
    )


class CreditPurchaseOut(Schema):
    status: Literal["succeeded", "requires_action"]
    transaction_id: str
    points: int
    wallet_transaction: WalletTransactionOut | None
    client_secret: str | None = None


@router.post(
    "/members/{member_id}/credit-purchases",
    response={201: CreditPurchaseOut, 202: CreditPurchaseOut, **ERRORS_402, 502: ERRORS[422]},
    auth=write_auth,
    url_name="credit_purchase",
)
@own_transactions
def purchase_credit(request: HttpRequest, member_id: str, payload: CreditPurchaseIn) -> Status:
    """Buy wallet credit by card (a Stripe PaymentMethod id; card data never reaches us).
    201 with the `credit_purchased` wallet transaction; 202 `requires_action` with the
    `client_secret` when the card needs 3-D Secure (the points arrive with the webhook);
    402 `payment_declined`."""
    out = credit.purchase_credit(
        member_id, amount=payload.amount, currency=payload.currency,
        payment_method_id=payload.payment_method_id, request_key=request_key(request),
    )  # fmt: skip
    return Status(201 if out.succeeded else 202, out)
