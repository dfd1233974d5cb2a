"""Hypothesis: any sequence of checkouts (free, paid by card, declined), cancellations with
and without refund, invoice refunds (whole or in part), waitlist joins, offers redeemed
and offers expired keeps the event's books straight after every step:

- places taken are never below zero nor above an item's or the event's capacity, and
  they are exactly what holds them: the lines of live tickets and the open offers;
- the waiting counter is the number of people waiting;
- every registered attendee is on a paid invoice of a paid checkout, or a free one whose
  total is zero;
- the credit notes of each invoice sum to what was refunded on its payment, never more
  than the invoice;
- no waitlist entry is offered a place that does not exist (an open offer holds one of
  the item's places, within its capacity).

Payments go to localstripe through the real gateway, as in the checkout tests."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any, ClassVar

import pytest
import stripe
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tessera.billing.models import Invoice, InvoiceLine, Refund
from tessera.core.errors import ProblemError
from tessera.events.cancellation import cancel_attendee, refund_invoice
from tessera.events.checkout import check_out
from tessera.events.models import Attendee, Checkout, Event, EventItem, WaitlistEntry
from tessera.events.requests import AttendeeIn, CheckoutIn, LineIn, PaymentIn, PersonIn
from tessera.events.services import EventChanges, update_event
from tessera.events.waitlist import expire_offers, join_waitlist
from tessera.notifications.models import OutboundEmail
from tests.support.events import event, item
from tests.support.fuzz import examples, long_run, record
from tests.support.stripe import card

# Real commits, as in production: a checkout runs outside any transaction (a card one
# commits what it holds before Stripe is called), so no test transaction may wrap it.
pytestmark = pytest.mark.django_db(transaction=True)

A = Attendee.Status
W = WaitlistEntry.Status
LIVE = (A.REGISTERED, A.CHECKED_IN)
GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
STEPS: Counter[str] = Counter()


def _token(entry: WaitlistEntry) -> str:
    """The offer's single-use token, from the email that carried it (only its digest is
    stored)."""
    sent = OutboundEmail.objects.filter(template="waitlist_offer", to=entry.contact.email)
    text = sent.order_by("-pk").first()
    assert text is not None
    return text.text_body.split("waitlist token: ", 1)[1].split()[0]


class EventBooks(RuleBasedStateMachine):
    """One event (4 places) with a free ticket (3), a paid one (3) and a paid add-on (2)."""

    client: ClassVar[stripe.StripeClient]

    def __init__(self) -> None:
        super().__init__()
        self.event = event(capacity=4, currency="USD")
        self.free = item(self.event, price=0, name="Free pass", capacity=3)
        self.paid = item(self.event, price=2500, name="Day ticket", capacity=3)
        self.addon = item(self.event, price=700, name="Lunch", kind="addon", capacity=2)
        self.people = 0
        STEPS["machines"] += 1

    def _person(self) -> PersonIn:
        self.people += 1
        stamp = f"{self.event.pk[-8:].lower()}-{self.people}"
        return PersonIn("Guest", f"No{self.people}", f"guest-{stamp}@example.org")

    def _books(self) -> tuple[Any, ...]:
        """What a refused request must leave as it was: places, live tickets, queue, credit."""
        return (
            tuple(EventItem.objects.filter(event=self.event).order_by("pk")
                  .values_list("sold", "waiting")),
            Event.objects.get(pk=self.event.pk).sold,
            tuple(Attendee.objects.filter(event=self.event, status__in=LIVE).order_by("pk")
                  .values_list("pk", flat=True)),
            tuple(WaitlistEntry.objects.filter(event=self.event).order_by("pk")
                  .values_list("status", flat=True)),
            Invoice.objects.filter(credits_id__in=Checkout.objects.filter(event=self.event)
                                   .values("invoice_id")).count(),
        )  # fmt: skip

    def _attempt(self, name: str, action: Any) -> None:
        STEPS[name] += 1
        before = self._books()
        refused = ""
        try:
            action()
        except ProblemError as exc:  # refused (sold out, declined, nothing left)
            refused = exc.code
        if refused:
            STEPS[f"{name} refused ({refused})"] += 1
            assert self._books() == before, f"{name} was refused ({refused}) but changed things"

    def _checkout(
        self,
        people: list[PersonIn],
        ticket: EventItem,
        *,
        addon: bool,
        number: str,
        token: str | None = None,
    ) -> None:
        lines = (LineIn(ticket.pk),) + ((LineIn(self.addon.pk),) if addon else ())
        attendees = tuple(AttendeeIn(person=p, items=lines) for p in people)
        pays = ticket.price > 0 or addon
        payment = PaymentIn("card", payment_method_id=card(self.client, number)) if pays else None
        check_out(
            CheckoutIn(
                event_id=self.event.pk,
                buyer=people[0],
                attendees=attendees,
                payment=payment,
                waitlist_token=token,
            )
        )

    # --- steps ---------------------------------------------------------------------------

    @rule(
        size=st.integers(1, 2),
        paid=st.booleans(),
        addon=st.booleans(),
        declined=st.booleans(),
    )
    def buy(self, size: int, paid: bool, addon: bool, declined: bool) -> None:
        ticket = self.paid if paid else self.free
        people = [self._person() for _ in range(size)]
        number = DECLINED_CARD if declined else GOOD_CARD
        self._attempt(
            "checkout", lambda: self._checkout(people, ticket, addon=addon, number=number)
        )

    def _has_tickets(self) -> bool:
        return Attendee.objects.filter(event=self.event, status__in=LIVE).exists()

    def _has_paid(self) -> bool:
        return Checkout.objects.filter(event=self.event, status=Checkout.Status.PAID).exists()

    def _has_offers(self) -> bool:
        return WaitlistEntry.objects.filter(event=self.event, status=W.OFFERED).exists()

    @precondition(_has_tickets)
    @rule(pick=st.integers(0, 50), refund=st.booleans())
    def cancel(self, pick: int, refund: bool) -> None:
        live = list(Attendee.objects.filter(event=self.event, status__in=LIVE).order_by("pk"))
        if live:
            chosen = live[pick % len(live)].pk
            self._attempt("cancel", lambda: cancel_attendee(chosen, refund=refund))

    @precondition(_has_paid)
    @rule(pick=st.integers(0, 50), share=st.sampled_from([None, 1, 2, 3]))
    def refund(self, pick: int, share: int | None) -> None:
        """Refund all that is left (None) or a part of the invoice (1/share of its total)."""
        invoices = list(
            Invoice.objects.filter(
                pk__in=Checkout.objects.filter(event=self.event, status=Checkout.Status.PAID)
                .values("invoice_id")
            ).order_by("pk")
        )  # fmt: skip
        if invoices:
            chosen = invoices[pick % len(invoices)]
            amount = None if share is None else max(1, chosen.total // share)
            self._attempt(
                "refund", lambda: refund_invoice(chosen.pk, amount=amount, reason="goodwill")
            )

    def _something_is_full(self) -> bool:
        ev = Event.objects.get(pk=self.event.pk)
        full = [i for i in self._items() if i.capacity is not None and i.sold >= i.capacity]
        return bool(full) or (ev.capacity is not None and ev.sold >= ev.capacity)

    @precondition(_something_is_full)
    @rule(paid=st.booleans())
    def wait(self, paid: bool) -> None:
        ticket = self.paid if paid else self.free
        person = self._person()
        self._attempt("waitlist", lambda: join_waitlist(self.event.pk, ticket.pk, person))

    @precondition(_has_offers)
    @rule(pick=st.integers(0, 50), addon=st.booleans(), declined=st.booleans())
    def redeem(self, pick: int, addon: bool, declined: bool) -> None:
        offers = list(
            WaitlistEntry.objects.filter(event=self.event, status=W.OFFERED)
            .select_related("contact", "item")
            .order_by("pk")
        )
        if not offers:
            return
        entry = offers[pick % len(offers)]
        contact = entry.contact
        person = PersonIn(contact.first_name, contact.last_name, contact.email)
        number = DECLINED_CARD if declined else GOOD_CARD
        ticket = entry.item
        token = _token(entry)
        self._attempt(
            "redeem",
            lambda: self._checkout([person], ticket, addon=addon, number=number, token=token),
        )

    @precondition(_has_offers)
    @rule(pick=st.integers(0, 50))
    def let_an_offer_lapse(self, pick: int) -> None:
        offers = list(
            WaitlistEntry.objects.filter(event=self.event, status=W.OFFERED).order_by("pk")
        )
        if offers:
            entry = offers[pick % len(offers)]
            WaitlistEntry.objects.filter(pk=entry.pk).update(
                offer_expires_at=timezone.now() - timedelta(seconds=1)
            )
            STEPS["offer lapsed"] += 1
            expire_offers()

    # --- invariants ----------------------------------------------------------------------

    def _items(self) -> list[EventItem]:
        return list(EventItem.objects.filter(event=self.event).order_by("pk"))

    @invariant()
    def places_stay_within_capacity(self) -> None:
        for it in self._items():
            assert it.capacity is None or 0 <= it.sold <= it.capacity, (it.name, it.sold)
        ev = Event.objects.get(pk=self.event.pk)
        assert ev.capacity is None or 0 <= ev.sold <= ev.capacity, ev.sold

    @invariant()
    def places_taken_are_what_holds_them(self) -> None:
        """An item's ``sold`` is its lines on live tickets plus its open offers (each holds
        one place for its entry): no place is lost, none counted twice."""
        live = Attendee.objects.filter(event=self.event, status__in=LIVE).values("pk")
        for it in self._items():
            on_tickets = (
                InvoiceLine.objects.filter(
                    item_id=it.pk, attendee_id__in=live, invoice__kind="invoice"
                ).aggregate(n=Sum("quantity"))["n"]
                or 0
            )
            offered = WaitlistEntry.objects.filter(item=it, status=W.OFFERED).count()
            assert it.sold == on_tickets + offered, (it.name, it.sold, on_tickets, offered)

    @invariant()
    def the_event_counts_its_tickets_and_offers(self) -> None:
        tickets = Attendee.objects.filter(event=self.event, status__in=LIVE).count()
        offered = WaitlistEntry.objects.filter(
            event=self.event, status=W.OFFERED, item__kind=EventItem.Kind.TICKET
        ).count()
        assert Event.objects.get(pk=self.event.pk).sold == tickets + offered

    @invariant()
    def the_waiting_counter_is_the_queue(self) -> None:
        for it in self._items():
            queued = WaitlistEntry.objects.filter(item=it, status=W.WAITING).count()
            assert it.waiting == queued, (it.name, it.waiting, queued)

    @invariant()
    def every_registered_attendee_is_on_a_settled_invoice(self) -> None:
        for attendee in Attendee.objects.filter(event=self.event, status__in=LIVE).select_related(
            "checkout__invoice"
        ):
            checkout = attendee.checkout
            invoice = checkout.invoice
            assert checkout.status in (Checkout.Status.PAID, Checkout.Status.FREE), checkout.status
            assert invoice is not None
            assert invoice.status == Invoice.Status.PAID, invoice.status
            assert (invoice.total == 0) == (checkout.status == Checkout.Status.FREE), (
                invoice.total,
                checkout.status,
            )

    @invariant()
    def credit_notes_sum_to_what_was_refunded(self) -> None:
        checkouts = Checkout.objects.filter(event=self.event, invoice__isnull=False)
        for checkout in checkouts.select_related("invoice"):
            invoice = checkout.invoice
            assert invoice is not None
            credited = -(
                Invoice.objects.filter(credits=invoice).aggregate(t=Sum("total"))["t"] or 0
            )
            refunded = (
                Refund.objects.filter(transaction_id=checkout.transaction_id)
                .exclude(status=Refund.Status.FAILED)
                .aggregate(t=Sum("amount"))["t"]
                or 0
            )
            assert credited == refunded, (invoice.pk, credited, refunded)
            assert credited <= invoice.total, (invoice.pk, credited, invoice.total)

    @invariant()
    def every_open_offer_holds_a_real_place(self) -> None:
        for it in self._items():
            offered = WaitlistEntry.objects.filter(item=it, status=W.OFFERED).count()
            assert offered <= it.sold, (it.name, offered, it.sold)
            assert it.capacity is None or offered <= it.capacity, (it.name, offered)


def test_any_sequence_keeps_the_event_books_straight(stripe_env: stripe.StripeClient) -> None:
    EventBooks.client = stripe_env
    STEPS.clear()
    run_state_machine_as_test(
        EventBooks,
        settings=settings(
            max_examples=examples(30),
            stateful_step_count=40 if long_run() else 20,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
    record("event_properties", dict(sorted(STEPS.items())))
    assert STEPS["checkout"] > 0


# --- what the machine found, pinned down ---------------------------------------------------


def _paid_pair(client: stripe.StripeClient) -> tuple[Checkout, list[Attendee]]:
    """Two attendees on one card checkout of 2 x 25.00."""
    ev = event(currency="USD")
    ticket = item(ev, price=2500)
    people = [
        PersonIn("Ada", "Lovelace", "ada@example.org"),
        PersonIn("Alan", "Turing", "alan@example.org"),
    ]
    done = check_out(
        CheckoutIn(
            event_id=ev.pk,
            buyer=people[0],
            attendees=tuple(AttendeeIn(person=p, items=(LineIn(ticket.pk),)) for p in people),
            payment=PaymentIn("card", payment_method_id=card(client)),
        )
    )
    checkout = Checkout.objects.get(pk=done.checkout_id)
    return checkout, list(Attendee.objects.filter(checkout=checkout).order_by("pk"))


def test_a_refused_cancellation_leaves_the_ticket_registered(
    stripe_env: stripe.StripeClient,
) -> None:
    """Refunding with the cancellation what a full refund of the invoice already gave back
    is refused (409) before anything is written."""
    checkout, attendees = _paid_pair(stripe_env)
    assert checkout.invoice_id is not None
    refund_invoice(checkout.invoice_id, amount=None, reason="goodwill")
    with pytest.raises(ProblemError):
        cancel_attendee(attendees[0].pk, refund=True)
    assert Attendee.objects.get(pk=attendees[0].pk).status == A.REGISTERED


def test_a_cancellation_after_a_partial_refund_pays_back_what_its_credit_note_says(
    stripe_env: stripe.StripeClient,
) -> None:
    """Half the invoice refunded (spread over both tickets), then one ticket cancelled with
    its refund: the money refunded is what the ticket's credit note gives back."""
    checkout, attendees = _paid_pair(stripe_env)
    assert checkout.invoice_id is not None
    refund_invoice(checkout.invoice_id, amount=2500, reason="goodwill")
    _, refunded = cancel_attendee(attendees[0].pk, refund=True)
    assert refunded is not None
    assert refunded.refund is not None
    assert refunded.refund.amount == -refunded.credit_note.total


def test_an_explicit_null_leaves_what_an_event_cannot_be_without() -> None:
    """Found by the live stateful fuzz: PATCH /events/{id} with `"starts_at": null` (which
    the document allows) compared a time with nothing, a 500."""
    ev = event()
    changed = update_event(ev.pk, EventChanges(starts_at=None, name=None))
    assert changed.starts_at == ev.starts_at
