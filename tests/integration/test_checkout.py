"""Checkouts over the API: the records a paid, free or points checkout leaves, where they
point, in which order, and on whose timeline."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tessera.billing.models import Invoice, InvoiceLine, PaymentMethod, Transaction
from tessera.crm.inputs import ContactInput
from tessera.crm.models import Contact, Lead, TimelineEntry
from tessera.crm.services import create_lead
from tessera.events.models import Answer, Attendee, Checkout, EventItem
from tessera.loyalty.models import WalletTransaction
from tests.support.api import Api
from tests.support.events import attendee, body, by_card, content, event, item, promo, question
from tests.support.loyalty import balance, member, program
from tests.support.stripe import card

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid(api: Api, stripe_env: stripe.StripeClient) -> dict[str, Any]:
    """A card checkout of one ticket with an answered question, as the contract shows."""
    ev = event(currency="EUR")
    ticket = item(ev, price=5000, tax_rate_bp=1900)
    diet = question(
        ev, label="Dietary needs", type="select", required=True, options=("None", "Vegan")
    )
    one = attendee(ticket, answers=[{"question_id": diet.pk, "value": "Vegan"}])
    r = api.post(
        f"/events/{ev.pk}/checkout",
        body(one, payment=by_card(card(stripe_env))),
        headers={"Idempotency-Key": "checkout-1"},
    )
    assert r.status_code == 201, r.content
    return content(r)


class TestPaidByCard:
    def test_it_is_paid(self, paid: dict[str, Any]) -> None:
        assert paid["status"] == "paid"

    def test_the_transaction_is_captured(self, paid: dict[str, Any]) -> None:
        assert paid["transaction"]["status"] == "captured"

    def test_the_transaction_references_the_invoice(self, paid: dict[str, Any]) -> None:
        assert (
            Transaction.objects.get(pk=paid["transaction"]["id"]).invoice_id
            == paid["invoice"]["id"]
        )

    def test_the_invoice_is_paid_with_its_number(self, paid: dict[str, Any]) -> None:
        assert (paid["invoice"]["status"], paid["invoice"]["number"][:4]) == ("paid", "INV-")

    def test_the_invoice_is_billed_to_the_buyer(self, paid: dict[str, Any]) -> None:
        assert paid["invoice"]["bill_to_contact_id"] == paid["contact_id"]

    def test_each_line_references_its_attendee(self, paid: dict[str, Any]) -> None:
        assert [line["attendee_id"] for line in paid["invoice"]["lines"]] == [
            paid["attendees"][0]["id"]
        ]

    def test_the_attendee_is_registered(self, paid: dict[str, Any]) -> None:
        assert paid["attendees"][0]["status"] == "registered"

    def test_the_attendee_has_a_ticket_code(self, paid: dict[str, Any]) -> None:
        assert paid["attendees"][0]["code"].startswith("T1.")

    def test_the_answer_is_kept(self, paid: dict[str, Any]) -> None:
        assert Answer.objects.get(attendee_id=paid["attendees"][0]["id"]).value == "Vegan"

    def test_the_total_is_what_the_card_paid(self, paid: dict[str, Any]) -> None:
        assert paid["transaction"]["amount"] == paid["invoice"]["total"]

    def test_the_records_were_made_in_the_documented_order(self, paid: dict[str, Any]) -> None:
        """Contact, attendee, invoice, transaction. (The card was tokenised by Stripe before
        the request; our record of it is written when the payment is recorded.)"""
        made = [
            Contact.objects.get(pk=paid["contact_id"]).created_at,
            Attendee.objects.get(pk=paid["attendees"][0]["id"]).created_at,
            Invoice.objects.get(pk=paid["invoice"]["id"]).created_at,
            Transaction.objects.get(pk=paid["transaction"]["id"]).created_at,
        ]
        assert made == sorted(made)

    def test_the_card_used_is_recorded(self, paid: dict[str, Any]) -> None:
        method = PaymentMethod.objects.get()
        assert paid["transaction"]["payment_method_id"] == method.stripe_id

    def test_the_contacts_timeline_lists_every_record(self, paid: dict[str, Any]) -> None:
        kinds = set(
            TimelineEntry.objects.filter(contact_id=paid["contact_id"]).values_list(
                "kind", flat=True
            )
        )
        assert {"attendee", "invoice", "transaction", "payment_method"} <= kinds

    def test_the_checkout_reads_back_as_answered(self, api: Api, paid: dict[str, Any]) -> None:
        assert content(api.get(f"/checkouts/{paid['id']}"))["invoice"] == paid["invoice"]

    def test_the_capacity_counts_the_place(self, paid: dict[str, Any]) -> None:
        assert EventItem.objects.get(pk=paid["invoice"]["lines"][0]["item_id"]).sold == 1


def test_a_replay_with_the_same_key_registers_nothing_more(
    api: Api, stripe_env: stripe.StripeClient
) -> None:
    ev = event()
    ticket = item(ev)
    request = body(attendee(ticket), payment=by_card(card(stripe_env)))
    first = api.post(f"/events/{ev.pk}/checkout", request, headers={"Idempotency-Key": "k1"})
    again = api.post(f"/events/{ev.pk}/checkout", request, headers={"Idempotency-Key": "k1"})
    assert (again.content, Checkout.objects.count()) == (first.content, 1)


class TestFree:
    def test_a_free_checkout_is_free(self, api: Api) -> None:
        ev = event()
        r = api.post(f"/events/{ev.pk}/checkout", body(attendee(item(ev, price=0))))
        assert content(r)["status"] == "free"

    def test_it_has_no_transaction(self, api: Api) -> None:
        ev = event()
        r = api.post(f"/events/{ev.pk}/checkout", body(attendee(item(ev, price=0))))
        assert content(r)["transaction"] is None

    def test_its_invoice_is_numbered_and_paid(self, api: Api) -> None:
        ev = event()
        r = api.post(f"/events/{ev.pk}/checkout", body(attendee(item(ev, price=0))))
        assert content(r)["invoice"]["status"] == "paid"

    def test_a_full_discount_makes_it_free(self, api: Api) -> None:
        ev = event()
        ticket = item(ev, price=3000)
        promo(ev, code="GUEST", percent_off=100)
        r = api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket), promo_code="guest"))
        assert content(r)["status"] == "free"


class TestPaidWithPoints:
    @pytest.fixture
    def points_checkout(self, api: Api) -> tuple[dict[str, Any], Any]:
        prog = program(currency="EUR", points_per_unit=100)
        m = member(prog, points=10_000)
        ev = event(currency="EUR", program_id=prog.pk)
        r = api.post(
            f"/events/{ev.pk}/checkout",
            body(attendee(item(ev, price=2500)), payment={"method": "wallet", "member_id": m.pk}),
        )
        assert r.status_code == 201, r.content
        return content(r), m

    def test_it_is_paid(self, points_checkout: tuple[dict[str, Any], Any]) -> None:
        assert points_checkout[0]["status"] == "paid"

    def test_the_wallet_pays_the_rate(self, points_checkout: tuple[dict[str, Any], Any]) -> None:
        assert balance(points_checkout[1]) == 10_000 - 2500

    def test_the_wallet_line_names_the_event(
        self, points_checkout: tuple[dict[str, Any], Any]
    ) -> None:
        wtx = WalletTransaction.objects.filter(type="order_placed").get()
        assert wtx.detail["event"] == "Summit"

    def test_a_program_of_another_currency_is_refused(self, api: Api) -> None:
        prog = program(currency="USD")
        m = member(prog, points=10_000)
        ev = event(currency="EUR", program_id=prog.pk)
        r = api.post(
            f"/events/{ev.pk}/checkout",
            body(attendee(item(ev)), payment={"method": "wallet", "member_id": m.pk}),
        )
        assert r.status_code == 422


class TestGroup:
    @pytest.fixture
    def group(self, api: Api) -> dict[str, Any]:
        ev = event()
        ticket = item(ev, price=0)
        workshop = item(ev, price=0, name="Workshop", kind="addon")
        r = api.post(
            f"/events/{ev.pk}/checkout",
            body(attendee(ticket, 1, workshop), attendee(ticket, 2), attendee(ticket, 3)),
        )
        assert r.status_code == 201, r.content
        return content(r)

    def test_one_invoice_for_everyone(self, group: dict[str, Any]) -> None:
        assert Invoice.objects.filter(kind="invoice").count() == 1

    def test_one_attendee_each(self, group: dict[str, Any]) -> None:
        assert len({a["contact_id"] for a in group["attendees"]}) == 3

    def test_a_line_per_item_bought(self, group: dict[str, Any]) -> None:
        assert InvoiceLine.objects.count() == 4

    def test_the_buyer_is_the_first_attendee(self, group: dict[str, Any]) -> None:
        assert group["contact_id"] == group["attendees"][0]["contact_id"]


class TestPeople:
    def test_a_matching_lead_is_linked_not_duplicated(self, api: Api) -> None:
        lead = create_lead(
            ContactInput(first_name="Guest0", last_name="Example", email="guest0@example.org")
        ).record
        ev = event()
        r = api.post(f"/events/{ev.pk}/checkout", body(attendee(item(ev, price=0))))
        assert Attendee.objects.get(pk=content(r)["attendees"][0]["id"]).lead_id == lead.pk

    def test_a_linked_lead_makes_one_contact(self, api: Api) -> None:
        create_lead(
            ContactInput(first_name="Guest0", last_name="Example", email="guest0@example.org")
        )
        ev = event()
        api.post(f"/events/{ev.pk}/checkout", body(attendee(item(ev, price=0))))
        assert (Contact.objects.count(), Lead.objects.count()) == (1, 1)

    def test_an_existing_contact_is_reused(self, api: Api) -> None:
        from tessera.crm.services import create_contact

        known = create_contact(
            ContactInput(first_name="Guest0", last_name="Example", email="guest0@example.org")
        ).record
        ev = event()
        r = api.post(f"/events/{ev.pk}/checkout", body(attendee(item(ev, price=0))))
        assert content(r)["contact_id"] == known.pk


class TestPricing:
    def test_a_percent_code_discounts_the_lines(self, api: Api, stripe_env: Any) -> None:
        ev = event()
        ticket = item(ev, price=10_000)
        promo(ev, code="TWENTY", percent_off=20)
        r = api.post(
            f"/events/{ev.pk}/checkout",
            body(attendee(ticket), promo_code="TWENTY", payment=by_card(card(stripe_env))),
        )
        assert content(r)["invoice"]["total"] == 8000

    def test_a_code_use_is_counted(self, api: Api) -> None:
        ev = event()
        code = promo(ev, code="FREE", percent_off=100, max_uses=5)
        api.post(f"/events/{ev.pk}/checkout", body(attendee(item(ev)), promo_code="FREE"))
        code.refresh_from_db()
        assert code.used == 1

    def test_exclusive_tax_is_added(self, api: Api, stripe_env: Any) -> None:
        ev = event()
        ticket = item(ev, price=10_000, tax_rate_bp=1900, tax_inclusive=False)
        r = api.post(
            f"/events/{ev.pk}/checkout", body(attendee(ticket), payment=by_card(card(stripe_env)))
        )
        assert content(r)["total"] == 11_900

    def test_a_donation_takes_its_own_amount(self, api: Api, stripe_env: Any) -> None:
        ev = event()
        ticket = item(ev, price=0)
        gift = item(ev, price=500, kind="donation", name="Gift")
        one = attendee(ticket)
        one["items"].append({"item_id": gift.pk, "amount": 2000})
        r = api.post(f"/events/{ev.pk}/checkout", body(one, payment=by_card(card(stripe_env))))
        assert content(r)["total"] == 2000
