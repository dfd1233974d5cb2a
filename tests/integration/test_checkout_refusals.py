"""A refused checkout writes nothing, holds nothing and charges nothing: bad input is one
422 listing every problem; a sold-out item 409; a decline 402 with its records kept as
cancelled and void; a 3-D Secure checkout left unfinished releases its places when its
hold runs out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import stripe
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tessera.billing.models import Invoice, Transaction
from tessera.crm.models import Contact
from tessera.events.models import Attendee, Checkout, Event, EventItem
from tessera.events.outcome import expire_holds
from tests.support.api import Api, assert_problem
from tests.support.events import attendee, body, by_card, content, event, item, promo, question
from tests.support.loyalty import balance, member, program
from tests.support.stripe import card, clearing

pytestmark = pytest.mark.django_db


def written() -> tuple[int, ...]:
    return (
        Contact.objects.count(),
        Checkout.objects.count(),
        Attendee.objects.count(),
        Invoice.objects.count(),
    )


def sold(ticket: EventItem) -> int:
    return EventItem.objects.get(pk=ticket.pk).sold


@pytest.fixture
def on_sale() -> tuple[Event, EventItem]:
    ev = event()
    return ev, item(ev, price=0, capacity=10, max_per_order=2)


class TestBadInputIsListedAtOnce:
    @pytest.fixture
    def refused(self, api: Api, on_sale: tuple[Event, EventItem]) -> dict[str, Any]:
        ev, ticket = on_sale
        other = item(event(), price=0)
        required = question(ev, label="Size", type="select", required=True, options=("S", "M"))
        request = body(
            {**attendee(ticket, 1), "answers": [{"question_id": required.pk, "value": "XL"}]},
            attendee(other, 2),
            {**attendee(ticket, 3), "items": [{"item_id": ticket.pk, "quantity": 3}]},
            promo_code="NOPE",
        )
        r = api.post(f"/events/{ev.pk}/checkout", request)
        return assert_problem(r, 422, "validation_error")

    def test_a_wrong_answer_is_named(self, refused: dict[str, Any]) -> None:
        assert "attendees.0.answers.0.value" in {e["field"] for e in refused["errors"]}

    def test_an_item_of_another_event_is_named(self, refused: dict[str, Any]) -> None:
        assert "attendees.1.items.0.item_id" in {e["field"] for e in refused["errors"]}

    def test_a_quantity_over_the_ticket_rule_is_named(self, refused: dict[str, Any]) -> None:
        assert "attendees.2.items" in {e["field"] for e in refused["errors"]}

    def test_an_unknown_code_is_named(self, refused: dict[str, Any]) -> None:
        assert "promo_code" in {e["field"] for e in refused["errors"]}

    def test_nothing_is_written(self, api: Api, on_sale: tuple[Event, EventItem]) -> None:
        ev, ticket = on_sale
        before = written()
        api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket), promo_code="NOPE"))
        assert written() == before

    def test_no_capacity_is_taken(self, api: Api, on_sale: tuple[Event, EventItem]) -> None:
        ev, ticket = on_sale
        api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket), promo_code="NOPE"))
        assert sold(ticket) == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sales_start": timezone.now() + timedelta(days=1)}, "attendees.0.items.0.item_id"),
        ({"sales_end": timezone.now() - timedelta(days=1)}, "attendees.0.items.0.item_id"),
        ({"active": False}, "attendees.0.items.0.item_id"),
    ],
)
def test_an_item_off_sale_is_refused(
    api: Api, on_sale: tuple[Event, EventItem], change: dict[str, Any], field: str
) -> None:
    ev, ticket = on_sale
    EventItem.objects.filter(pk=ticket.pk).update(**change)
    r = api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket)))
    assert [e["field"] for e in assert_problem(r, 422, "validation_error")["errors"]] == [field]


def test_an_item_off_sale_registers_nobody(api: Api, on_sale: tuple[Event, EventItem]) -> None:
    ev, ticket = on_sale
    EventItem.objects.filter(pk=ticket.pk).update(sales_end=timezone.now() - timedelta(days=1))
    api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket)))
    assert Attendee.objects.count() == 0


def test_a_missing_required_answer_is_refused(api: Api, on_sale: tuple[Event, EventItem]) -> None:
    ev, ticket = on_sale
    question(ev, label="Size", type="select", required=True, options=("S", "M"))
    r = api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket)))
    assert [e["field"] for e in assert_problem(r, 422, "validation_error")["errors"]] == [
        "attendees.0.answers"
    ]


def test_a_missing_required_answer_registers_nobody(
    api: Api, on_sale: tuple[Event, EventItem]
) -> None:
    ev, ticket = on_sale
    question(ev, label="Size", type="select", required=True, options=("S", "M"))
    api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket)))
    assert Attendee.objects.count() == 0


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("email", "not-an-email"),
        ("number", "12"),
        ("date", "31/12/2026"),
        ("checkbox", "yes"),
        ("multiselect", ["S", "XL"]),
        ("phone", "call me"),
    ],
)
def test_an_answer_of_the_wrong_type_is_refused(
    api: Api, on_sale: tuple[Event, EventItem], kind: str, value: Any
) -> None:
    ev, ticket = on_sale
    options = ("S", "M") if kind == "multiselect" else ()
    q = question(ev, label="Q", type=kind, options=options)
    one = {**attendee(ticket), "answers": [{"question_id": q.pk, "value": value}]}
    r = api.post(f"/events/{ev.pk}/checkout", body(one))
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == (
        "attendees.0.answers.0.value"
    )


def test_an_event_not_live_is_refused(api: Api, on_sale: tuple[Event, EventItem]) -> None:
    ev, ticket = on_sale
    Event.objects.filter(pk=ev.pk).update(status="draft")
    r = api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket)))
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "event_id"


def test_an_expired_code_is_refused(api: Api, on_sale: tuple[Event, EventItem]) -> None:
    ev, ticket = on_sale
    promo(ev, code="OLD", percent_off=10, valid_until=timezone.now() - timedelta(days=1))
    r = api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket), promo_code="OLD"))
    assert assert_problem(r, 422, "validation_error")["errors"][0] == {
        "field": "promo_code",
        "message": "has expired",
    }


def test_a_used_up_code_is_409(api: Api, on_sale: tuple[Event, EventItem]) -> None:
    ev, ticket = on_sale
    promo(ev, code="ONCE", percent_off=10, max_uses=1)
    api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket, 1), promo_code="ONCE"))
    r = api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket, 2), promo_code="ONCE"))
    assert_problem(r, 409, "promo_code_used_up")


def test_a_paid_checkout_without_payment_is_refused(api: Api) -> None:
    ev = event()
    r = api.post(f"/events/{ev.pk}/checkout", body(attendee(item(ev, price=100))))
    assert assert_problem(r, 422, "validation_error")["errors"][0]["field"] == "payment"


class TestSoldOut:
    @pytest.fixture
    def last_place(self, api: Api) -> tuple[Event, EventItem]:
        ev = event()
        ticket = item(ev, price=0, capacity=1)
        api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket, 1)))
        return ev, ticket

    def test_it_is_409(self, api: Api, last_place: tuple[Event, EventItem]) -> None:
        ev, ticket = last_place
        assert_problem(
            api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket, 2))), 409, "sold_out"
        )

    def test_it_names_the_item_and_what_is_left(
        self, api: Api, last_place: tuple[Event, EventItem]
    ) -> None:
        ev, ticket = last_place
        r = api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket, 2)))
        assert content(r)["items"] == [
            {"item_id": ticket.pk, "name": ticket.name, "wanted": 1, "available": 0}
        ]

    def test_it_writes_nothing(self, api: Api, last_place: tuple[Event, EventItem]) -> None:
        ev, ticket = last_place
        before = written()
        api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket, 2)))
        assert written() == before

    def test_the_event_capacity_is_a_limit_too(self, api: Api) -> None:
        ev = event(capacity=1)
        a, b = item(ev, price=0, name="A"), item(ev, price=0, name="B")
        api.post(f"/events/{ev.pk}/checkout", body(attendee(a, 1)))
        r = api.post(f"/events/{ev.pk}/checkout", body(attendee(b, 2)))
        assert content(r)["items"][0]["item_id"] is None


class TestDeclinedCard:
    @pytest.fixture
    def declined(self, api: Api, stripe_env: stripe.StripeClient) -> tuple[dict[str, Any], Any]:
        ev = event(currency="USD")
        ticket = item(ev, price=2500, capacity=5)
        pm = card(stripe_env, "4000000000000002")
        r = api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket), payment=by_card(pm)))
        return assert_problem(r, 402, "payment_declined"), ticket

    def test_it_says_why(self, declined: tuple[dict[str, Any], Any]) -> None:
        assert declined[0]["decline_code"] == "card_declined"

    def test_the_place_is_given_back(self, declined: tuple[dict[str, Any], Any]) -> None:
        assert sold(declined[1]) == 0

    def test_the_attendee_is_kept_cancelled(self, declined: tuple[dict[str, Any], Any]) -> None:
        assert list(Attendee.objects.values_list("status", flat=True)) == ["cancelled"]

    def test_the_invoice_is_kept_void(self, declined: tuple[dict[str, Any], Any]) -> None:
        assert list(Invoice.objects.values_list("status", "number")) == [("void", None)]

    def test_the_checkout_failed(self, declined: tuple[dict[str, Any], Any]) -> None:
        assert Checkout.objects.get(pk=declined[0]["checkout_id"]).status == "failed"

    def test_nothing_is_charged(self, declined: tuple[dict[str, Any], Any]) -> None:
        assert clearing("USD") == 0


class TestThreeDSecureLeftUnfinished:
    @pytest.fixture
    def waiting(self, api: Api, stripe_env: stripe.StripeClient) -> tuple[dict[str, Any], Any]:
        ev = event(currency="USD")
        ticket = item(ev, price=2500, capacity=5)
        pm = card(stripe_env, "4000002760003184")
        r = api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket), payment=by_card(pm)))
        assert r.status_code == 202, r.content
        return content(r), ticket

    def test_it_answers_with_the_client_secret(self, waiting: tuple[dict[str, Any], Any]) -> None:
        assert waiting[0]["client_secret"]

    def test_the_place_is_held(self, waiting: tuple[dict[str, Any], Any]) -> None:
        assert sold(waiting[1]) == 1

    def test_an_expired_hold_gives_the_place_back(
        self, waiting: tuple[dict[str, Any], Any]
    ) -> None:
        Checkout.objects.update(hold_expires_at=timezone.now() - timedelta(seconds=1))
        expire_holds()
        assert sold(waiting[1]) == 0

    def test_an_expired_hold_ends_the_checkout(self, waiting: tuple[dict[str, Any], Any]) -> None:
        Checkout.objects.update(hold_expires_at=timezone.now() - timedelta(seconds=1))
        expire_holds()
        assert Checkout.objects.get().status == "expired"

    def test_an_expired_hold_cancels_the_payment(self, waiting: tuple[dict[str, Any], Any]) -> None:
        Checkout.objects.update(hold_expires_at=timezone.now() - timedelta(seconds=1))
        expire_holds()
        assert Transaction.objects.get().status == "canceled"

    def test_an_expired_hold_charges_nothing(self, waiting: tuple[dict[str, Any], Any]) -> None:
        Checkout.objects.update(hold_expires_at=timezone.now() - timedelta(seconds=1))
        expire_holds()
        assert clearing("USD") == 0


class TestTooFewPoints:
    @pytest.fixture
    def refused(self, api: Api) -> tuple[dict[str, Any], Any, Any]:
        prog = program(currency="EUR", points_per_unit=100)
        m = member(prog, points=100)
        ev = event(currency="EUR", program_id=prog.pk)
        ticket = item(ev, price=2500, capacity=3)
        r = api.post(
            f"/events/{ev.pk}/checkout",
            body(attendee(ticket), payment={"method": "wallet", "member_id": m.pk}),
        )
        return assert_problem(r, 402, "insufficient_balance"), m, ticket

    def test_the_wallet_is_untouched(self, refused: tuple[dict[str, Any], Any, Any]) -> None:
        assert balance(refused[1]) == 100

    def test_the_place_is_given_back(self, refused: tuple[dict[str, Any], Any, Any]) -> None:
        assert sold(refused[2]) == 0

    def test_nobody_is_registered(self, refused: tuple[dict[str, Any], Any, Any]) -> None:
        assert not Attendee.objects.filter(status="registered").exists()


@pytest.mark.django_db(transaction=True)
def test_a_single_attendee_checkout_stays_within_its_query_budget(api: Api) -> None:
    """A single-attendee checkout in at most 22 queries (the target is 25): a free one for a
    new person, the API key and the idempotency record included. Run outside a test
    transaction, so the request's transactions are real ones (not savepoints, which would
    count)."""
    from tessera.crm.matching import rules
    from tessera.crm.matching.standard import install_standard_rules

    install_standard_rules()  # transactional tests start from empty tables
    rules.invalidate()
    ev = event()
    ticket = item(ev, price=0, capacity=10)
    api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket, 1)))  # warm the rule cache
    with CaptureQueriesContext(connection) as queries:
        r = api.post(
            f"/events/{ev.pk}/checkout",
            body(attendee(ticket, 2)),
            headers={"Idempotency-Key": "budget"},
        )
    assert r.status_code == 201, r.content
    control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")  # not queries
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(control)]
    assert len(statements) <= 22, "\n".join(q[:90] for q in statements)
