"""Events and checkout endpoints: thin: validate, call one service, render."""

from __future__ import annotations

from typing import Any, TypeVar

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema, Status

from tessera.api import events_schemas as s
from tessera.api.auth import admin_auth, limit_checkouts, read_auth, request_key, write_auth
from tessera.api.schemas import ERRORS, PageOut, PageQuery, reject_unknown_query
from tessera.api.transactions import own_transactions
from tessera.billing.models import Invoice, Transaction
from tessera.core.pagination import paginate
from tessera.events import cancellation, checkin, services, waitlist
from tessera.events import checkout as saga
from tessera.events.models import Attendee, Checkout, Event, EventItem
from tessera.events.requests import AnswerIn, AttendeeIn, CheckoutIn, LineIn, PaymentIn, PersonIn

router = Router(tags=["Events"])
PAYMENT_ERRORS = {**ERRORS, 402: ERRORS[422], 502: ERRORS[422]}
Out = TypeVar("Out", bound=Schema)


def _render(schema: type[Out], record: object, **computed: Any) -> Out:
    """``schema`` filled from ``record``'s attributes of the same names; ``computed`` gives
    the fields the record has no attribute for (or renders differently)."""
    return schema(
        **{f: computed[f] if f in computed else getattr(record, f) for f in schema.model_fields}
    )


def _item(item: EventItem) -> s.EventItemOut:
    available = services.available(item.capacity, item.sold, item.waiting)
    return _render(s.EventItemOut, item, available=available)


def _event(event: Event) -> s.EventOut:
    return _render(
        s.EventOut,
        event,
        available=services.available(event.capacity, event.sold, 0),
        items=[_item(i) for i in event.items.all()],
    )


def _attendee(a: Attendee) -> s.AttendeeOut:
    return _render(s.AttendeeOut, a, code=a.code or None)


def _invoice(invoice: Invoice) -> s.CheckoutInvoiceOut:
    lines = sorted(invoice.lines.all(), key=lambda line: line.position)
    return _render(
        s.CheckoutInvoiceOut,
        invoice,
        bill_to_contact_id=invoice.bill_to_id,
        lines=[_render(s.CheckoutLineOut, line) for line in lines],
    )


def _transaction(txn: Transaction) -> s.CheckoutTransactionOut:
    card = txn.payment_method.stripe_id if txn.payment_method else None
    return _render(s.CheckoutTransactionOut, txn, payment_method_id=card)


def _checkout(checkout: Checkout, client_secret: str | None = None) -> s.CheckoutOut:
    invoice, txn = checkout.invoice, checkout.transaction
    return _render(
        s.CheckoutOut,
        checkout,
        contact_id=checkout.buyer_id,
        attendees=[_attendee(a) for a in sorted(checkout.attendees.all(), key=lambda a: a.pk)],
        invoice=None if invoice is None else _invoice(invoice),
        transaction=None if txn is None else _transaction(txn),
        client_secret=client_secret,
    )


def _person(p: s.BuyerIn) -> PersonIn:
    return PersonIn(p.first_name, p.last_name, p.email or "", p.phone, p.company)


def _checkout_in(event_id: str, body: s.CheckoutBodyIn) -> CheckoutIn:
    def answers(items: list[s.CheckoutAnswerIn]) -> tuple[AnswerIn, ...]:
        return tuple(AnswerIn(a.question_id, a.value) for a in items)

    payment = body.payment
    return CheckoutIn(
        event_id=event_id,
        buyer=_person(body.buyer),
        attendees=tuple(
            AttendeeIn(
                _person(a),
                tuple(LineIn(i.item_id, i.quantity, i.amount) for i in a.items),
                answers(a.answers),
            )
            for a in body.attendees
        ),
        answers=answers(body.answers),
        promo_code=body.promo_code,
        payment=None
        if payment is None
        else PaymentIn(
            payment.method,
            getattr(payment, "payment_method_id", ""),
            getattr(payment, "member_id", ""),
        ),
        waitlist_token=body.waitlist_token,
    )


# --- organiser -----------------------------------------------------------------------------


@router.post("/events", response={201: s.EventOut, **ERRORS}, auth=admin_auth)
def create_event(request: HttpRequest, payload: s.EventIn) -> Status:
    return Status(201, _event(services.create_event(services.EventSpec(**payload.model_dump()))))


@router.patch("/events/{event_id}", response={200: s.EventOut, **ERRORS}, auth=admin_auth)
def update_event(request: HttpRequest, event_id: str, payload: s.EventPatch) -> s.EventOut:
    changes = services.EventChanges(**payload.model_dump(exclude_unset=True))
    return _event(services.update_event(event_id, changes))


@router.post("/events/{event_id}/items", response={201: s.EventItemOut, **ERRORS}, auth=admin_auth)
def add_item(request: HttpRequest, event_id: str, payload: s.EventItemIn) -> Status:
    return Status(
        201, _item(services.add_item(event_id, services.ItemSpec(**payload.model_dump())))
    )


@router.post(
    "/events/{event_id}/questions", response={201: s.EventQuestionOut, **ERRORS}, auth=admin_auth
)
def add_question(request: HttpRequest, event_id: str, payload: s.EventQuestionIn) -> Status:
    data = payload.model_dump()
    spec = services.QuestionSpec(
        **{**data, "options": data["options"] or (), "item_ids": data["item_ids"] or ()}
    )
    question = services.add_question(event_id, spec)
    item_ids = sorted(i.pk for i in question.items.all())
    return Status(201, _render(s.EventQuestionOut, question, item_ids=item_ids))


@router.post(
    "/events/{event_id}/promo-codes", response={201: s.PromoCodeOut, **ERRORS}, auth=admin_auth
)
def add_promo_code(request: HttpRequest, event_id: str, payload: s.PromoCodeIn) -> Status:
    data = payload.model_dump()
    promo = services.add_promo_code(
        event_id, services.PromoSpec(**{**data, "item_ids": data["item_ids"] or ()})
    )
    item_ids = sorted(i.pk for i in promo.items.all())
    return Status(201, _render(s.PromoCodeOut, promo, item_ids=item_ids))


# --- reads ---------------------------------------------------------------------------------


@router.get("/events", response={200: PageOut[s.EventOut], **ERRORS}, auth=read_auth)
def list_events(request: HttpRequest, q: Query[PageQuery]) -> Any:
    """Live events with what is still available of each item."""
    reject_unknown_query(request, PageQuery)
    page = paginate(services.live_events(), limit=q.limit, cursor=q.cursor)
    return {"items": [_event(e) for e in page.items], "next_cursor": page.next_cursor}


@router.get("/events/{event_id}", response={200: s.EventOut, **ERRORS}, auth=read_auth)
def get_event(request: HttpRequest, event_id: str) -> s.EventOut:
    return _event(services.get_event(event_id))


@router.get(
    "/events/{event_id}/attendees",
    response={200: PageOut[s.AttendeeOut], **ERRORS},
    auth=read_auth,
    openapi_extra={"responses": {"200": {"content": {"text/csv": {"schema": {"type": "string"}}}}}},
)
def list_attendees(request: HttpRequest, event_id: str, q: Query[s.AttendeesQuery]) -> Any:
    """The event's attendees, filtered by status; `?format=csv` for a spreadsheet."""
    reject_unknown_query(request, s.AttendeesQuery)
    if q.format == "csv":
        response = HttpResponse(services.attendees_csv(event_id, q.status), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="attendees-{event_id}.csv"'
        return response
    page = paginate(services.attendees_of(event_id, q.status), limit=q.limit, cursor=q.cursor)
    return {"items": [_attendee(a) for a in page.items], "next_cursor": page.next_cursor}


@router.get("/checkouts/{checkout_id}", response={200: s.CheckoutOut, **ERRORS}, auth=read_auth)
def get_checkout(request: HttpRequest, checkout_id: str) -> s.CheckoutOut:
    return _checkout(services.get_checkout(checkout_id))


@router.get("/attendees/{attendee_id}", response={200: s.AttendeeOut, **ERRORS}, auth=read_auth)
def get_attendee(request: HttpRequest, attendee_id: str) -> s.AttendeeOut:
    return _attendee(services.get_attendee(attendee_id))


# --- buying, the door, changes of mind -------------------------------------------------------


@router.post(
    "/events/{event_id}/checkout",
    response={201: s.CheckoutOut, 202: s.CheckoutOut, **PAYMENT_ERRORS, 429: ERRORS[422]},
    auth=write_auth,
    url_name="event_checkout",
)
@own_transactions
def check_out(request: HttpRequest, event_id: str, payload: s.CheckoutBodyIn) -> Status:
    """Register attendees and pay (see the contract). 201 `paid` or `free`; 202
    `requires_action` with the `client_secret` for 3-D Secure (places held meanwhile);
    402 `payment_declined` or `insufficient_balance`, 409 `sold_out`, 422: nothing stays
    registered and what was held is given back. Send an `Idempotency-Key`. 429
    `rate_limited` past the checkouts allowed per API key or client (`Retry-After`)."""
    limit_checkouts(request)
    outcome = saga.check_out(_checkout_in(event_id, payload), request_key=request_key(request))
    checkout = outcome.checkout or services.get_checkout(outcome.checkout_id)
    body = _checkout(checkout, outcome.client_secret)
    return Status(202 if outcome.status == "requires_action" else 201, body)


@router.post(
    "/events/{event_id}/waitlist",
    response={200: s.WaitlistOut, 201: s.WaitlistOut, **ERRORS},
    auth=write_auth,
)
def join_waitlist(request: HttpRequest, event_id: str, payload: s.WaitlistIn) -> Status:
    """Queue a person for a sold-out item (409 `places_available` while it has places); 200
    with their entry if they are already waiting."""
    joined = waitlist.join_waitlist(event_id, payload.item_id, _person(payload.person))
    return Status(201 if joined.created else 200, _render(s.WaitlistOut, joined.entry))


@router.post("/check-ins", response={200: s.CheckInOut, **ERRORS}, auth=write_auth)
def check_in_code(request: HttpRequest, payload: s.CheckInIn) -> s.CheckInOut:
    """Check in by the signed code in a ticket's QR: 409 `already_checked_in` (with when),
    `cancelled`, `not_registered`, `wrong_event`; 422 `invalid_code` for a forged code."""
    return _render(s.CheckInOut, checkin.check_in_code(payload.code, event_id=payload.event_id))


@router.post(
    "/attendees/{attendee_id}/check-in", response={200: s.CheckInOut, **ERRORS}, auth=write_auth
)
def check_in(request: HttpRequest, attendee_id: str) -> s.CheckInOut:
    return _render(s.CheckInOut, checkin.check_in(attendee_id))


def _refund_out(refunded: cancellation.Refunded) -> s.InvoiceRefundOut:
    note, refund = refunded.credit_note, refunded.refund
    return s.InvoiceRefundOut(
        credit_note=_render(s.CreditNoteSummaryOut, note, credits_invoice_id=note.credits_id),
        refund_id=refund.pk if refund else None,
        refund_status=refund.status if refund else None,
        amount=-note.total,
        points_returned=refunded.points,
    )


@router.post(
    "/attendees/{attendee_id}/cancel",
    response={200: s.AttendeeCancelOut, **PAYMENT_ERRORS},
    auth=admin_auth,
    url_name="attendee_cancel",
)
@own_transactions
def cancel(
    request: HttpRequest, attendee_id: str, payload: s.AttendeeCancelIn
) -> s.AttendeeCancelOut:
    """Cancel a ticket: its places back (offered to the waitlist); with `refund` a credit
    note for the attendee's lines and the card refunded or the points returned."""
    attendee, refunded = cancellation.cancel_attendee(
        attendee_id, refund=payload.refund, request_key=request_key(request)
    )
    return s.AttendeeCancelOut(
        attendee=_attendee(attendee), refund=_refund_out(refunded) if refunded else None
    )


@router.post(
    "/invoices/{invoice_id}/refunds",
    response={201: s.InvoiceRefundOut, **PAYMENT_ERRORS},
    auth=admin_auth,
    url_name="invoice_refund",
)
@own_transactions
def refund_invoice(request: HttpRequest, invoice_id: str, payload: s.InvoiceRefundIn) -> Status:
    """Refund part or all of a paid checkout with a credit note; 409
    `refund_exceeds_remaining` beyond what remains."""
    refunded = cancellation.refund_invoice(
        invoice_id,
        amount=payload.amount,
        reason=payload.reason or "",
        request_key=request_key(request),
    )
    return Status(201, _refund_out(refunded))
