"""Step 1 of a checkout: check everything before anything is written.

Every problem is collected, so the buyer sees them all at once (one ``errors`` entry per
field, paths as sent: ``attendees.0.items.1.quantity``), and a refused checkout has
written nothing and taken no capacity. What is found valid becomes a ``Plan``: the
priced lines, the capacity wanted, the payment, for the steps that write.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from tessera.billing.invoices import LineSpec, Priced, price_lines
from tessera.core.errors import ValidationFailed
from tessera.core.lookup import get_by_id
from tessera.core.money import minor_unit_digits
from tessera.events import answers as answer_rules
from tessera.events.catalogue import catalogue
from tessera.events.models import Event, EventItem, PromoCode, WaitlistEntry
from tessera.events.pricing import discounts
from tessera.events.requests import AnswerIn, CheckoutIn, LineIn
from tessera.loyalty.models import Member

MAX_ATTENDEES = 50


@dataclass
class PlannedAttendee:
    index: int
    ticket: EventItem
    answers: dict[str, object]


@dataclass
class Plan:
    event: Event
    request: CheckoutIn
    attendees: list[PlannedAttendee]
    lines: list[LineSpec]  # attendee_id holds the attendee's index until attendees exist
    priced: Priced
    wanted: dict[str, int]
    places: int
    order_answers: dict[str, object]
    promo: PromoCode | None = None
    member: Member | None = None
    points: int = 0
    offer: WaitlistEntry | None = None

    @property
    def total(self) -> int:
        return self.priced.total

    @property
    def card_id(self) -> str:
        payment = self.request.payment
        return payment.payment_method_id if payment and payment.method == "card" else ""

    @property
    def payment(self) -> str:
        if self.total == 0:
            return "none"
        return self.request.payment.method if self.request.payment else "none"


@dataclass
class Problems:
    errors: list[dict[str, str]] = field(default_factory=list)

    def add(self, path: str, message: str) -> None:
        self.errors.append({"field": path, "message": message})

    def raise_any(self) -> None:
        if self.errors:
            detail = "; ".join(f"{e['field'] or 'checkout'}: {e['message']}" for e in self.errors)
            raise ValidationFailed(detail, errors=self.errors)


def load_event(event_id: str) -> Event:
    """The event and its program, read fresh; its catalogue comes from ``catalogue``."""
    return get_by_id(Event.objects.select_related("program"), event_id, "event")


def plan_checkout(request: CheckoutIn, *, now: datetime | None = None) -> Plan:
    now = now or timezone.now()
    event = load_event(request.event_id)
    problems = Problems()
    if event.status != Event.Status.LIVE:
        problems.add("event_id", f"the event is {event.status}, not on sale")
    if not request.attendees:
        problems.add("attendees", "a checkout needs at least one attendee")
    if len(request.attendees) > MAX_ATTENDEES:
        problems.add("attendees", f"at most {MAX_ATTENDEES} attendees per checkout")
    listed = catalogue(event)
    items = dict(listed.items)  # the cached dict is shared: never changed here
    offer = _offer(event, request.waitlist_token, problems, now)
    attendees, lines, wanted = _attendee_lines(request, items, problems, now, offer)
    _check_max_per_order(request, items, problems)
    questions = list(listed.questions)
    order_answers = answer_rules.check_order_answers(questions, request.answers, problems)
    for planned in attendees:
        attendee = request.attendees[planned.index]
        bought = {line.item_id for line in attendee.items}
        planned.answers = answer_rules.check_attendee_answers(
            questions, bought, attendee.answers, f"attendees.{planned.index}", problems
        )
    promo = _promo(event, request.promo_code, problems, now)
    problems.raise_any()
    lines = discounts(lines, promo, items, event.currency)
    priced = price_lines(lines, event.currency)
    plan = Plan(
        event=event,
        request=request,
        attendees=attendees,
        lines=lines,
        priced=priced,
        wanted=dict(wanted),
        places=sum(1 for a in attendees if a.ticket.takes_a_place),
        order_answers=order_answers,
        promo=promo,
        offer=offer,
    )
    _check_payment(plan, problems)
    problems.raise_any()
    return plan


def _attendee_lines(
    request: CheckoutIn,
    items: dict[str, EventItem],
    problems: Problems,
    now: datetime,
    offer: WaitlistEntry | None,
) -> tuple[list[PlannedAttendee], list[LineSpec], dict[str, int]]:
    attendees: list[PlannedAttendee] = []
    lines: list[LineSpec] = []
    wanted: dict[str, int] = defaultdict(int)
    for a, attendee in enumerate(request.attendees):
        tickets: list[EventItem] = []
        flawed = False
        for i, line in enumerate(attendee.items):
            where = f"attendees.{a}.items.{i}"
            item = _item(items, line, where, problems, now)
            if item is None:
                flawed = True
                continue
            wanted[item.pk] += line.quantity
            if item.takes_a_place:
                tickets.append(item)
            unit = line.amount if line.amount is not None else item.price
            lines.append(_line(item, line, unit, a))
        if flawed:
            continue  # its lines' own problems are reported; counting them would mislead
        if len(tickets) != 1 or _ticket_quantity(attendee.items, items) != 1:
            problems.add(f"attendees.{a}.items", "each attendee takes exactly one ticket")
        else:
            attendees.append(PlannedAttendee(a, tickets[0], {}))
    if offer is not None and not any(p.ticket.pk == offer.item_id for p in attendees):
        problems.add("waitlist_token", "this offer is for another ticket")
    return attendees, lines, wanted


def _ticket_quantity(lines: tuple[LineIn, ...], items: dict[str, EventItem]) -> int:
    return sum(
        line.quantity
        for line in lines
        if line.item_id in items and items[line.item_id].takes_a_place
    )


def _line(item: EventItem, line: LineIn, unit: int, attendee: int) -> LineSpec:
    return LineSpec(
        item_id=item.pk,
        attendee_id=str(attendee),
        description=item.name,
        quantity=line.quantity,
        unit_price=unit,
        discount=0,
        tax_rate_bp=item.tax_rate_bp,
        tax_inclusive=item.tax_inclusive,
    )


def _item(
    items: dict[str, EventItem], line: LineIn, where: str, problems: Problems, now: datetime
) -> EventItem | None:
    item = items.get(line.item_id)
    if item is None:
        problems.add(f"{where}.item_id", "no such item in this event")
        return None
    ok = True
    if not item.active:
        problems.add(f"{where}.item_id", f"{item.name} is not on sale")
        ok = False
    elif item.sales_start and now < item.sales_start:
        problems.add(f"{where}.item_id", f"{item.name} goes on sale at {item.sales_start:%c}")
        ok = False
    elif item.sales_end and now >= item.sales_end:
        problems.add(f"{where}.item_id", f"sales of {item.name} ended at {item.sales_end:%c}")
        ok = False
    if line.quantity < 1:
        problems.add(f"{where}.quantity", "must be at least 1")
        ok = False
    if line.amount is not None and item.kind != EventItem.Kind.DONATION:
        problems.add(f"{where}.amount", "only a donation takes an amount")
        ok = False
    elif line.amount is not None and line.amount < item.price:
        problems.add(f"{where}.amount", f"must be at least {item.price}")
        ok = False
    return item if ok else None


def _check_max_per_order(
    request: CheckoutIn, items: dict[str, EventItem], problems: Problems
) -> None:
    totals: dict[str, int] = defaultdict(int)
    for attendee in request.attendees:
        for line in attendee.items:
            totals[line.item_id] += line.quantity
    for item_id, quantity in totals.items():
        item = items.get(item_id)
        if item is not None and item.max_per_order is not None and quantity > item.max_per_order:
            problems.add("attendees", f"at most {item.max_per_order} of {item.name} per order")


def _promo(event: Event, code: str | None, problems: Problems, now: datetime) -> PromoCode | None:
    if not code:
        return None
    promo = (
        PromoCode.objects.prefetch_related("items")
        .filter(event=event, code=code.strip().upper())
        .first()
    )
    if promo is None or not promo.active:
        problems.add("promo_code", "no such promo code for this event")
        return None
    if promo.valid_from and now < promo.valid_from:
        problems.add("promo_code", "is not valid yet")
    elif promo.valid_until and now >= promo.valid_until:
        problems.add("promo_code", "has expired")
    return promo


def _offer(
    event: Event, token: str | None, problems: Problems, now: datetime
) -> WaitlistEntry | None:
    if not token:
        return None
    digest = hashlib.sha256(token.encode()).hexdigest()
    entry = WaitlistEntry.objects.filter(event=event, token_digest=digest).first()
    if entry is None or entry.status != WaitlistEntry.Status.OFFERED:
        problems.add("waitlist_token", "no open waitlist offer has this token")
        return None
    if entry.offer_expires_at and now >= entry.offer_expires_at:
        problems.add("waitlist_token", "the offer has expired")
        return None
    return entry


def _check_payment(plan: Plan, problems: Problems) -> None:
    payment = plan.request.payment
    if plan.total == 0:
        if payment is not None:
            problems.add("payment", "nothing to pay: send no payment for a free checkout")
        return
    if payment is None:
        problems.add("payment", "the total is not zero: pay by card or wallet")
        return
    if payment.method == "card" and not payment.payment_method_id:
        problems.add("payment.payment_method_id", "is required to pay by card")
    if payment.method == "wallet":
        _check_wallet(plan, payment.member_id, problems)


def _check_wallet(plan: Plan, member_id: str, problems: Problems) -> None:
    event = plan.event
    program = event.program
    if program is None:
        problems.add("payment.method", "this event takes no points: it has no loyalty program")
        return
    if program.currency != event.currency:
        problems.add("payment.method", f"points pay only for events priced in {program.currency}")
        return
    member = (
        Member.objects.select_related("program", "wallet", "contact")
        .filter(pk=member_id, program=program)
        .first()
    )
    if member is None:
        problems.add("payment.member_id", "no member of this event's program")
        return
    plan.member = member
    plan.points = points_price(plan.total, program.points_per_unit, event.currency)


def points_price(amount: int, points_per_unit: int, currency: str) -> int:
    """Points for ``amount`` minor units at the program's rate, rounded up: a ticket paid in
    points never costs less than its price."""
    scale = 10 ** minor_unit_digits(currency)
    return -(-amount * points_per_unit // scale)


__all__ = ["AnswerIn", "Plan", "plan_checkout", "points_price"]
