"""Events and checkout endpoints: thin: validate, call one service, render."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Status

from tessera.api import events_schemas as s
from tessera.api.auth import admin_auth, limit_checkouts, read_auth, request_key, write_auth
from tessera.api.schemas import ERRORS, PageOut, PageQuery, reject_unknown_query
from tessera.core.pagination import paginate
from tessera.events import cancellation, checkin, services, waitlist
from tessera.events import checkout as saga
from tessera.events.models import Attendee, Checkout, Event, EventItem
from tessera.events.requests import AnswerIn, AttendeeIn, CheckoutIn, LineIn, PaymentIn, PersonIn

router = Router(tags=["Events"])
PAYMENT_ERRORS = {**ERRORS, 402: ERRORS[422], 502: ERRORS[422]}


def _item(item: EventItem) -> dict[str, Any]:
    return {
        **{f: getattr(item, f) for f in s.EventItemOut.model_fields if f != "available"},
        "available": services.available(item.capacity, item.sold, item.waiting),
    }


def _event(event: Event) -> dict[str, Any]:
    fields = {
        f: getattr(event, f) for f in s.EventOut.model_fields if f not in ("available", "items")
    }
    return {
        **fields,
        "available": services.available(event.capacity, event.sold, 0),
        "items": [_item(i) for i in event.items.all()],
    }


def _attendee(a: Attendee) -> dict[str, Any]:
    data = {f: getattr(a, f, None) for f in s.AttendeeOut.model_fields}
    data["code"] = a.code or None
    return data


def _checkout(checkout: Checkout, client_secret: str | None = None) -> dict[str, Any]:
    invoice, txn = checkout.invoice, checkout.transaction
    return {
        "id": checkout.pk,
        "event_id": checkout.event_id,
        "status": checkout.status,
        "contact_id": checkout.buyer_id,
        "total": checkout.total,
        "currency": checkout.currency,
        "payment": checkout.payment,
        "points": checkout.points,
        "attendees": [_attendee(a) for a in sorted(checkout.attendees.all(), key=lambda a: a.pk)],
        "invoice": None
        if invoice is None
        else {
            "id": invoice.pk,
            "number": invoice.number,
            "status": invoice.status,
            "total": invoice.total,
            "currency": invoice.currency,
            "bill_to_contact_id": invoice.bill_to_id,
            "lines": [
                {f: getattr(line, f) for f in s.CheckoutLineOut.model_fields}
                for line in sorted(invoice.lines.all(), key=lambda line: line.position)
            ],
        },
        "transaction": None
        if txn is None
        else {
            "id": txn.pk,
            "status": txn.status,
            "amount": txn.amount,
            "currency": txn.currency,
            "payment_method_id": txn.payment_method.stripe_id if txn.payment_method else None,
            "stripe_payment_intent_id": txn.stripe_payment_intent_id,
        },
        "client_secret": client_secret,
        "hold_expires_at": checkout.hold_expires_at,
        "failure_code": checkout.failure_code,
        "created_at": checkout.created_at,
    }


def _checkout_in(event_id: str, body: s.CheckoutBodyIn) -> CheckoutIn:
    def person(p: Any) -> PersonIn:
        return PersonIn(p.first_name, p.last_name, p.email or "", p.phone, p.company)

    def answers(items: list[s.CheckoutAnswerIn]) -> tuple[AnswerIn, ...]:
        return tuple(AnswerIn(a.question_id, a.value) for a in items)

    payment = body.payment
    return CheckoutIn(
        event_id=event_id,
        buyer=person(body.buyer),
        attendees=tuple(
            AttendeeIn(
                person(a),
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
def update_event(request: HttpRequest, event_id: str, payload: s.EventPatch) -> Any:
    changes = services.EventChanges(payload.model_dump(exclude_unset=True))
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
    return Status(
        201,
        {
            **{
                f: getattr(question, f)
                for f in ("id", "label", "type", "required", "options", "per_attendee")
            },
            "item_ids": sorted(i.pk for i in question.items.all()),
        },
    )


@router.post(
    "/events/{event_id}/promo-codes", response={201: s.PromoCodeOut, **ERRORS}, auth=admin_auth
)
def add_promo_code(request: HttpRequest, event_id: str, payload: s.PromoCodeIn) -> Status:
    data = payload.model_dump()
    promo = services.add_promo_code(
        event_id, services.PromoSpec(**{**data, "item_ids": data["item_ids"] or ()})
    )
    fields = {f: getattr(promo, f) for f in s.PromoCodeOut.model_fields if f != "item_ids"}
    return Status(201, {**fields, "item_ids": sorted(i.pk for i in promo.items.all())})


# --- reads ---------------------------------------------------------------------------------


@router.get("/events", response={200: PageOut[s.EventOut], **ERRORS}, auth=read_auth)
def list_events(request: HttpRequest, q: Query[PageQuery]) -> Any:
    """Live events with what is still available of each item."""
    reject_unknown_query(request, PageQuery)
    page = paginate(services.live_events(), limit=q.limit, cursor=q.cursor)
    return {"items": [_event(e) for e in page.items], "next_cursor": page.next_cursor}


@router.get("/events/{event_id}", response={200: s.EventOut, **ERRORS}, auth=read_auth)
def get_event(request: HttpRequest, event_id: str) -> Any:
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
def get_checkout(request: HttpRequest, checkout_id: str) -> Any:
    return _checkout(services.get_checkout(checkout_id))


@router.get("/attendees/{attendee_id}", response={200: s.AttendeeOut, **ERRORS}, auth=read_auth)
def get_attendee(request: HttpRequest, attendee_id: str) -> Any:
    return _attendee(services.get_attendee(attendee_id))


# --- buying, the door, changes of mind -------------------------------------------------------


@router.post(
    "/events/{event_id}/checkout",
    response={201: s.CheckoutOut, 202: s.CheckoutOut, **PAYMENT_ERRORS, 429: ERRORS[422]},
    auth=write_auth,
    url_name="event_checkout",
)
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
    p = payload.person
    person = PersonIn(p.first_name, p.last_name, p.email or "", p.phone, p.company)
    joined = waitlist.join_waitlist(event_id, payload.item_id, person)
    entry = joined.entry
    body = {f: getattr(entry, f) for f in s.WaitlistOut.model_fields}
    return Status(201 if joined.created else 200, body)


@router.post("/check-ins", response={200: s.CheckInOut, **ERRORS}, auth=write_auth)
def check_in_code(request: HttpRequest, payload: s.CheckInIn) -> Any:
    """Check in by the signed code in a ticket's QR: 409 `already_checked_in` (with when),
    `cancelled`, `not_registered`, `wrong_event`; 422 `invalid_code` for a forged code."""
    return checkin.check_in_code(payload.code, event_id=payload.event_id).__dict__


@router.post(
    "/attendees/{attendee_id}/check-in", response={200: s.CheckInOut, **ERRORS}, auth=write_auth
)
def check_in(request: HttpRequest, attendee_id: str) -> Any:
    return checkin.check_in(attendee_id).__dict__


def _refund_out(refunded: cancellation.Refunded) -> dict[str, Any]:
    note = refunded.credit_note
    return {
        "credit_note": {
            "id": note.pk,
            "number": note.number,
            "total": note.total,
            "currency": note.currency,
            "credits_invoice_id": note.credits_id,
        },
        "refund_id": refunded.refund.pk if refunded.refund else None,
        "refund_status": refunded.refund.status if refunded.refund else None,
        "amount": -note.total,
        "points_returned": refunded.points,
    }


@router.post(
    "/attendees/{attendee_id}/cancel",
    response={200: s.AttendeeCancelOut, **PAYMENT_ERRORS},
    auth=admin_auth,
    url_name="attendee_cancel",
)
def cancel(request: HttpRequest, attendee_id: str, payload: s.AttendeeCancelIn) -> Any:
    """Cancel a ticket: its places back (offered to the waitlist); with `refund` a credit
    note for the attendee's lines and the card refunded or the points returned."""
    attendee, refunded = cancellation.cancel_attendee(
        attendee_id, refund=payload.refund, request_key=request_key(request)
    )
    return {"attendee": _attendee(attendee), "refund": _refund_out(refunded) if refunded else None}


@router.post(
    "/invoices/{invoice_id}/refunds",
    response={201: s.InvoiceRefundOut, **PAYMENT_ERRORS},
    auth=admin_auth,
    url_name="invoice_refund",
)
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
