"""Events for members and attendees: the list, and an event's page with its registration
form (what follows it, the waitlist and the confirmation, is in ``checkouts``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from tessera.core.ratelimits import spend
from tessera.events import services
from tessera.events.catalogue import catalogue
from tessera.events.checkout import check_out
from tessera.events.models import Event, EventItem, WaitlistEntry
from tessera.events.requests import CheckoutOutcome, PaymentIn, PersonIn
from tessera.events.validation import points_price
from tessera.loyalty.models import Member
from tessera.portal.event_forms import (
    MAX_ATTENDEES,
    RegistrationForm,
    WaitlistForm,
    attendee_count,
    service_key,
    typed_values,
)
from tessera.portal.identity import Viewer, member_page
from tessera.portal.pages import page
from tessera.portal.submissions import Claimed, attempt, claim, new_key
from tessera.portal.templatetags.portal import money, pts
from tessera.portal.views.account import rate_limited

# The session key of a checkout's 3-D Secure client secret: the confirmation page, drawn
# after a redirect, needs it, and it is nobody else's to read.
SECRET = "portal:3ds:{}"  # noqa: S105 - a key's name


@dataclass(frozen=True)
class ItemRow:
    item: EventItem
    available: int | None  # None: no limit
    points: int | None  # its price in points, when points pay for the event

    @property
    def sold_out(self) -> bool:
        return self.available == 0


def item_rows(event: Event, items: list[EventItem]) -> list[ItemRow]:
    """Active items with what a buyer can take: a ticket is also bounded by the event."""
    at_event = services.available(event.capacity, event.sold, 0)
    rows = []
    for item in items:
        if not item.active:
            continue
        left = services.available(item.capacity, item.sold, item.waiting)
        if item.takes_a_place and at_event is not None:
            left = at_event if left is None else min(left, at_event)
        rows.append(ItemRow(item, left, points_for(event, item.price)))
    return rows


def fresh_rows(event: Event) -> list[ItemRow]:
    # Read from the table, not the catalogue: its cached counters are stale by design.
    return item_rows(event, list(EventItem.objects.filter(event=event).order_by("position", "pk")))


def points_for(event: Event, amount: int) -> int | None:
    program = event.program
    if program is None or program.currency != event.currency:
        return None
    return points_price(amount, program.points_per_unit, event.currency)


def wallet_member(viewer: Viewer, event: Event) -> Member | None:
    """The viewer's membership of the program whose points pay for this event."""
    if viewer.member is None or event.program_id is None:
        return None
    return (
        Member.objects.select_related("wallet", "program")
        .filter(contact=viewer.contact, program_id=event.program_id)
        .first()
    )


@member_page
@require_GET
def event_list(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    events = services.live_events().select_related("program").order_by("starts_at", "pk")
    rows = [(e, item_rows(e, list(e.items.all()))) for e in events]
    listed = [{"event": e, "items": r, "sold_out": _sold_out(r)} for e, r in rows]
    return page(request, viewer, "portal/events/list.html", {"events": listed}, section="events")


def _sold_out(rows: list[ItemRow]) -> bool:
    tickets = [r for r in rows if r.item.takes_a_place]
    return bool(tickets) and all(r.sold_out for r in tickets)


def live_event(event_id: str) -> Event:
    return get_object_or_404(
        Event.objects.select_related("program"), pk=event_id, status=Event.Status.LIVE
    )


def _payments(rows: list[ItemRow], member: Member | None) -> list[tuple[str, str]]:
    if all(r.item.price == 0 for r in rows):
        return []  # nothing here costs money: no payment asked
    choices = [("card", _("Card"))]
    if member is not None:
        balance = pts(member.wallet.balance)
        choices.append(
            ("wallet", _("Points (your wallet holds %(balance)s)") % {"balance": balance})
        )
    return choices


def _ticket_labels(event: Event, rows: list[ItemRow]) -> dict[str, str]:
    labels = {}
    for r in rows:
        price = money(r.item.price, event.currency) if r.item.price else _("Free")
        if r.points is not None and r.item.price:
            price = f"{price} / {pts(r.points)}"
        left = (
            _("sold out")
            if r.sold_out
            else ""
            if r.available is None
            else _("%(n)s left") % {"n": r.available}
        )
        labels[r.item.pk] = " · ".join(x for x in (r.item.name, price, left) if x)
    return labels


def _offer(event: Event, token: str) -> WaitlistEntry | None:
    """The open offer a waitlist token names (the email links to the page with it)."""
    if not token:
        return None
    digest = hashlib.sha256(token.encode()).hexdigest()
    return (
        WaitlistEntry.objects.select_related("item")
        .filter(event=event, token_digest=digest, status=WaitlistEntry.Status.OFFERED)
        .first()
    )


@member_page
@require_http_methods(["GET", "POST"])
def event_page(request: HttpRequest, viewer: Viewer, event_id: str) -> HttpResponse:
    event = live_event(event_id)
    listed = catalogue(event)
    rows = fresh_rows(event)
    member = wallet_member(viewer, event)
    make = partial(RegistrationForm, listed=listed, payments=_payments(rows, member))
    source = request.POST if request.method == "POST" else request.GET
    count = attendee_count(source.get("attendees", 1))
    step = request.POST.get("change")
    if request.method == "POST" and step in ("add", "remove"):
        # Redrawn with one attendee more or less and what was typed kept: no JavaScript.
        typed = make(request.POST, count=count)
        count = attendee_count(count + (1 if step == "add" else -1))
        form = make(initial=typed_values(typed), count=count)
    elif request.method == "POST":
        form = make(request.POST, count=count)
        if form.is_valid():
            done = _register(request, viewer, event, form, member)
            if done is not None:
                return done
        return _event_response(request, viewer, event, rows, form, status=_status(form))
    else:
        form = make(initial=_prefill(viewer, event, request), count=count)
    return _event_response(request, viewer, event, rows, form)


def _prefill(viewer: Viewer, event: Event, request: HttpRequest) -> dict[str, Any]:
    contact = viewer.contact
    initial: dict[str, Any] = {
        "a0_first_name": contact.first_name,
        "a0_last_name": contact.last_name,
        "a0_email": contact.email,
    }
    token = request.GET.get("waitlist_token", "")
    offer = _offer(event, token)
    if offer is not None:
        initial.update(waitlist_token=token, a0_ticket=offer.item_id)
    return initial


def _status(form: RegistrationForm) -> int:
    return form.problem.status if form.problem is not None else 422


def _event_response(
    request: HttpRequest,
    viewer: Viewer,
    event: Event,
    rows: list[ItemRow],
    form: RegistrationForm,
    status: int = 200,
) -> HttpResponse:
    if form.problem is not None:  # the checkout found fewer places than the page showed
        event.refresh_from_db(fields=["sold"])
        rows = fresh_rows(event)
    form.label_choices(_ticket_labels(event, rows))
    if form.is_bound:
        form.mark_invalid()
    sold_out = [r for r in rows if r.item.takes_a_place and r.sold_out]
    token = str(form["waitlist_token"].value() or "")
    context = {
        "event": event,
        "rows": rows,
        "form": form,
        "can_add": form.count < MAX_ATTENDEES,
        "offer": _offer(event, token),
        "all_sold_out": _sold_out(rows),
        "waitlist": [(r, WaitlistForm(initial={"item_id": r.item.pk})) for r in sold_out],
        "waiting": WaitlistEntry.objects.filter(
            event=event,
            contact=viewer.contact,
            status__in=[WaitlistEntry.Status.WAITING, WaitlistEntry.Status.OFFERED],
        ).select_related("item"),
        "card": "payment" in form.fields,
    }
    return page(
        request, viewer, "portal/events/detail.html", context, section="events", status=status
    )


def _buyer(viewer: Viewer, form: RegistrationForm) -> PersonIn:
    """The viewer pays; a contact missing a name borrows what they typed for attendee 1."""
    c, data = viewer.contact, form.cleaned_data
    return PersonIn(
        c.first_name or data["a0_first_name"], c.last_name or data["a0_last_name"], c.email
    )


def _payment(form: RegistrationForm, member: Member | None) -> PaymentIn | None:
    method = form.cleaned_data.get("payment")
    if method == "wallet" and member is not None:
        return PaymentIn("wallet", member_id=member.pk)
    if method == "card":
        return PaymentIn("card", payment_method_id=form.cleaned_data["payment_method_id"])
    return None


def _register(
    request: HttpRequest,
    viewer: Viewer,
    event: Event,
    form: RegistrationForm,
    member: Member | None,
) -> HttpResponse | None:
    """Check out once per form (a double click is sent where the first went); None with
    the service's refusal beside the fields, and a fresh key for the corrected form."""
    if _too_many_checkouts(request):
        return rate_limited(request)
    key = form.cleaned_data.get("form_key") or ""
    claimed = claim(request.user, key, "event_checkout")
    if not isinstance(claimed, Claimed):
        return claimed
    payment = _payment(form, member)
    request_in = form.checkout_in(event.pk, _buyer(viewer, form), payment)
    rkey = service_key(request.user, "event_checkout", key)
    result = attempt(lambda: check_out(request_in, request_key=rkey), atomic=False)
    error = result.error
    if error is not None and payment is not None and _nothing_to_pay(error):
        # A promo code took the total to zero: the service refuses a payment for nothing.
        free = form.checkout_in(event.pk, _buyer(viewer, form), None)
        result = attempt(lambda: check_out(free, request_key=rkey), atomic=False)
        error = result.error
    if error is None and result.value is not None:
        return _checked_out(request, claimed, result.value)
    claimed.release()
    if error is not None:
        form.show_problem(error)
    fresh = request.POST.copy()
    fresh["form_key"] = new_key()  # the refused request's key stays with its record
    fresh["payment_method_id"] = ""  # a PaymentMethod is used once
    form.data = fresh
    return None


def _too_many_checkouts(request: HttpRequest) -> bool:
    """Checkouts per member and per client IP, as the API counts them per key: a stolen
    session cannot test cards through the form faster than TESSERA_CHECKOUT_RATE."""
    waits = [
        spend(request, "portal-checkout-member", "user", settings.TESSERA_CHECKOUT_RATE),
        spend(request, "portal-checkout-client", "ip", settings.TESSERA_CHECKOUT_RATE_PER_CLIENT),
    ]
    return any(wait is not None for wait in waits)


def _nothing_to_pay(error: Any) -> bool:
    # With a payment sent, a problem on "payment" itself means only "nothing to pay"
    # (other payment problems name payment.method, payment.member_id, ...).
    return error.code == "validation_error" and any(
        e.get("field") == "payment" for e in error.errors or []
    )


def _checked_out(request: HttpRequest, claimed: Claimed, outcome: CheckoutOutcome) -> HttpResponse:
    if outcome.status == "requires_action" and outcome.client_secret:
        request.session[SECRET.format(outcome.checkout_id)] = outcome.client_secret
    return claimed.done(f"/events/checkouts/{outcome.checkout_id}")
