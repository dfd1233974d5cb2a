"""After a checkout: the door (signed codes, attendance points once), changes of mind
(cancellation, refunds with credit notes) and the waitlist (a freed place goes to the
first person waiting, by a single-use token)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import stripe
from django.utils import timezone

from tessera.billing.models import Invoice, Refund
from tessera.events.models import Attendee, EventItem, WaitlistEntry
from tessera.events.tickets import sign_ticket
from tessera.events.waitlist import expire_offers
from tessera.loyalty.models import Member, WalletTransaction
from tessera.notifications.models import OutboundEmail
from tests.support.api import Api, assert_problem
from tests.support.events import attendee, body, by_card, by_wallet, content, event, item
from tests.support.loyalty import balance, member, program
from tests.support.stripe import card

pytestmark = pytest.mark.django_db


@pytest.fixture
def registered(api: Api) -> dict[str, Any]:
    """A free registration at an event whose program gives 300 points for attending."""
    prog = program(currency="EUR")
    ev = event(program_id=prog.pk, attendance_points=300)
    r = api.post(f"/events/{ev.pk}/checkout", body(attendee(item(ev, price=0, capacity=5))))
    assert r.status_code == 201, r.content
    return content(r)["attendees"][0]


def scan(api: Api, code: str, **kw: Any) -> Any:
    return api.post("/check-ins", {"code": code, **kw})


class TestCheckIn:
    def test_a_registered_ticket_checks_in(self, api: Api, registered: dict[str, Any]) -> None:
        assert content(scan(api, registered["code"]))["attendee_id"] == registered["id"]

    def test_checking_in_earns_the_attendance_points(
        self, api: Api, registered: dict[str, Any]
    ) -> None:
        scan(api, registered["code"])
        assert balance(Member.objects.get(contact_id=registered["contact_id"])) == 300

    def test_a_second_scan_says_when_the_first_was(
        self, api: Api, registered: dict[str, Any]
    ) -> None:
        first = content(scan(api, registered["code"]))
        again = assert_problem(scan(api, registered["code"]), 409, "already_checked_in")
        assert again["checked_in_at"][:19] == first["checked_in_at"][:19]

    def test_checking_in_twice_earns_the_points_once(
        self, api: Api, registered: dict[str, Any]
    ) -> None:
        scan(api, registered["code"])
        api.post(f"/attendees/{registered['id']}/check-in")
        assert WalletTransaction.objects.filter(type="points_earned").count() == 1

    def test_a_forged_code_is_invalid(self, api: Api, registered: dict[str, Any]) -> None:
        forged = registered["code"][:-2] + ("AA" if not registered["code"].endswith("AA") else "BB")
        assert_problem(scan(api, forged), 422, "invalid_code")

    def test_a_code_signed_with_another_key_is_invalid(
        self, api: Api, registered: dict[str, Any], settings: Any
    ) -> None:
        settings.SECRET_KEY = "another-installation"
        code = sign_ticket(registered["id"], registered["event_id"])
        settings.SECRET_KEY = "insecure-local-only-key-do-not-use-in-production"
        assert_problem(scan(api, code), 422, "invalid_code")

    def test_a_cancelled_ticket_is_refused(
        self, api: Api, admin_api: Api, registered: dict[str, Any]
    ) -> None:
        admin_api.post(f"/attendees/{registered['id']}/cancel", {"refund": False})
        assert_problem(scan(api, registered["code"]), 409, "cancelled")

    def test_a_ticket_for_another_event_is_refused(
        self, api: Api, registered: dict[str, Any]
    ) -> None:
        other = event()
        assert_problem(scan(api, registered["code"], event_id=other.pk), 409, "wrong_event")

    def test_an_unpaid_ticket_is_not_registered(
        self, api: Api, stripe_env: stripe.StripeClient
    ) -> None:
        ev = event(currency="USD")
        pm = card(stripe_env, "4000002760003184")  # waits for 3-D Secure
        r = api.post(f"/events/{ev.pk}/checkout", body(attendee(item(ev)), payment=by_card(pm)))
        code = Attendee.objects.get(pk=content(r)["attendees"][0]["id"]).code
        assert_problem(scan(api, code), 409, "not_registered")


class TestCancellation:
    @pytest.fixture
    def paid_by_card(self, api: Api, stripe_env: stripe.StripeClient) -> dict[str, Any]:
        ev = event(currency="USD")
        ticket = item(ev, price=3000, capacity=2)
        r = api.post(
            f"/events/{ev.pk}/checkout",
            body(attendee(ticket, 1), attendee(ticket, 2), payment=by_card(card(stripe_env))),
        )
        assert r.status_code == 201, r.content
        return content(r)

    def test_cancelling_gives_the_place_back(
        self, admin_api: Api, paid_by_card: dict[str, Any]
    ) -> None:
        admin_api.post(f"/attendees/{paid_by_card['attendees'][0]['id']}/cancel", {"refund": True})
        assert EventItem.objects.get().sold == 1

    def test_a_refund_issues_a_credit_note_for_the_attendee(
        self, admin_api: Api, paid_by_card: dict[str, Any]
    ) -> None:
        r = admin_api.post(
            f"/attendees/{paid_by_card['attendees'][0]['id']}/cancel", {"refund": True}
        )
        assert content(r)["refund"]["credit_note"]["total"] == -3000

    def test_the_card_is_refunded_the_attendee_share(
        self, admin_api: Api, paid_by_card: dict[str, Any]
    ) -> None:
        admin_api.post(f"/attendees/{paid_by_card['attendees'][0]['id']}/cancel", {"refund": True})
        assert Refund.objects.get().amount == 3000

    def test_the_credit_note_has_its_own_number(
        self, admin_api: Api, paid_by_card: dict[str, Any]
    ) -> None:
        r = admin_api.post(
            f"/attendees/{paid_by_card['attendees'][0]['id']}/cancel", {"refund": True}
        )
        assert content(r)["refund"]["credit_note"]["number"].startswith("CN-")

    def test_the_invoice_never_changes(self, admin_api: Api, paid_by_card: dict[str, Any]) -> None:
        admin_api.post(f"/attendees/{paid_by_card['attendees'][0]['id']}/cancel", {"refund": True})
        assert Invoice.objects.get(pk=paid_by_card["invoice"]["id"]).total == 6000

    def test_a_cancelled_ticket_cannot_be_cancelled_again(
        self, admin_api: Api, paid_by_card: dict[str, Any]
    ) -> None:
        path = f"/attendees/{paid_by_card['attendees'][0]['id']}/cancel"
        admin_api.post(path, {"refund": False})
        assert_problem(admin_api.post(path, {"refund": True}), 409, "cancelled")

    def test_without_refund_nothing_is_refunded(
        self, admin_api: Api, paid_by_card: dict[str, Any]
    ) -> None:
        admin_api.post(f"/attendees/{paid_by_card['attendees'][0]['id']}/cancel", {"refund": False})
        assert Refund.objects.count() == 0


class TestInvoiceRefunds:
    @pytest.fixture
    def invoice_id(self, api: Api, stripe_env: stripe.StripeClient) -> str:
        ev = event(currency="USD")
        r = api.post(
            f"/events/{ev.pk}/checkout",
            body(attendee(item(ev, price=5000)), payment=by_card(card(stripe_env))),
        )
        return str(content(r)["invoice"]["id"])

    def test_a_partial_refund_is_credited(self, admin_api: Api, invoice_id: str) -> None:
        r = admin_api.post(f"/invoices/{invoice_id}/refunds", {"amount": 2000})
        assert content(r)["amount"] == 2000

    def test_the_rest_can_be_refunded(self, admin_api: Api, invoice_id: str) -> None:
        admin_api.post(f"/invoices/{invoice_id}/refunds", {"amount": 2000})
        assert content(admin_api.post(f"/invoices/{invoice_id}/refunds", {}))["amount"] == 3000

    def test_more_than_remains_is_409(self, admin_api: Api, invoice_id: str) -> None:
        admin_api.post(f"/invoices/{invoice_id}/refunds", {"amount": 4000})
        assert_problem(
            admin_api.post(f"/invoices/{invoice_id}/refunds", {"amount": 2000}),
            409,
            "refund_exceeds_remaining",
        )

    def test_an_overshoot_refunds_nothing(self, admin_api: Api, invoice_id: str) -> None:
        admin_api.post(f"/invoices/{invoice_id}/refunds", {"amount": 6000})
        assert Refund.objects.count() == 0

    def test_the_invoice_lists_its_credit_notes(
        self, api: Api, admin_api: Api, invoice_id: str
    ) -> None:
        admin_api.post(f"/invoices/{invoice_id}/refunds", {"amount": 1000})
        assert len(content(api.get(f"/invoices/{invoice_id}"))["credit_notes"]) == 1


def test_a_points_refund_returns_the_points(api: Api, admin_api: Api) -> None:
    prog = program(currency="EUR", points_per_unit=100)
    m = member(prog, points=5000)
    ev = event(program_id=prog.pk)
    r = api.post(
        f"/events/{ev.pk}/checkout", body(attendee(item(ev, price=2000)), payment=by_wallet(m.pk))
    )
    admin_api.post(f"/invoices/{content(r)['invoice']['id']}/refunds", {})
    assert balance(m) == 5000


class TestWaitlist:
    @pytest.fixture
    def full(self, api: Api) -> tuple[Any, EventItem, dict[str, Any]]:
        ev = event()
        ticket = item(ev, price=0, capacity=1)
        holder = content(api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket, 1))))
        return ev, ticket, holder

    def join(self, api: Api, ev: Any, ticket: EventItem, n: int) -> Any:
        person = {k: v for k, v in attendee(ticket, n).items() if k != "items"}
        return api.post(f"/events/{ev.pk}/waitlist", {"item_id": ticket.pk, "person": person})

    def test_a_sold_out_item_takes_a_waiting_entry(self, api: Api, full: Any) -> None:
        assert self.join(api, *full[:2], 2).status_code == 201

    def test_an_item_with_places_sends_buyers_to_the_checkout(self, api: Api) -> None:
        ev = event()
        ticket = item(ev, price=0, capacity=3)
        assert_problem(self.join(api, ev, ticket, 1), 409, "places_available")

    def test_a_freed_place_is_offered_to_the_first(
        self, api: Api, admin_api: Api, full: Any
    ) -> None:
        ev, ticket, holder = full
        self.join(api, ev, ticket, 2)
        self.join(api, ev, ticket, 3)
        admin_api.post(f"/attendees/{holder['attendees'][0]['id']}/cancel", {"refund": False})
        assert list(WaitlistEntry.objects.order_by("pk").values_list("status", flat=True)) == [
            "offered",
            "waiting",
        ]

    def test_the_offer_is_emailed_with_its_token(self, api: Api, admin_api: Api, full: Any) -> None:
        ev, ticket, holder = full
        self.join(api, ev, ticket, 2)
        admin_api.post(f"/attendees/{holder['attendees'][0]['id']}/cancel", {"refund": False})
        assert "waitlist token" in OutboundEmail.objects.get(template="waitlist_offer").text_body

    def test_the_offer_links_to_the_event_page_with_its_token(
        self, api: Api, admin_api: Api, full: Any
    ) -> None:
        ev, ticket, holder = full
        self.join(api, ev, ticket, 2)
        admin_api.post(f"/attendees/{holder['attendees'][0]['id']}/cancel", {"refund": False})
        text = OutboundEmail.objects.get(template="waitlist_offer").text_body
        assert f"/events/{ev.pk}?waitlist_token={_token(text)}" in text

    def test_someone_not_waiting_cannot_take_the_freed_place(
        self, api: Api, admin_api: Api, full: Any
    ) -> None:
        ev, ticket, holder = full
        self.join(api, ev, ticket, 2)
        admin_api.post(f"/attendees/{holder['attendees'][0]['id']}/cancel", {"refund": False})
        assert_problem(
            api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket, 9))), 409, "sold_out"
        )

    def test_the_token_redeems_the_place(self, api: Api, admin_api: Api, full: Any) -> None:
        ev, ticket, holder = full
        self.join(api, ev, ticket, 2)
        admin_api.post(f"/attendees/{holder['attendees'][0]['id']}/cancel", {"refund": False})
        token = _token(OutboundEmail.objects.get(template="waitlist_offer").text_body)
        r = api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket, 2), waitlist_token=token))
        assert content(r)["status"] == "free"

    def test_the_token_works_once(self, api: Api, admin_api: Api, full: Any) -> None:
        ev, ticket, holder = full
        self.join(api, ev, ticket, 2)
        admin_api.post(f"/attendees/{holder['attendees'][0]['id']}/cancel", {"refund": False})
        token = _token(OutboundEmail.objects.get(template="waitlist_offer").text_body)
        api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket, 2), waitlist_token=token))
        r = api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket, 3), waitlist_token=token))
        assert r.status_code == 422

    def test_an_expired_offer_passes_to_the_next(self, api: Api, admin_api: Api, full: Any) -> None:
        ev, ticket, holder = full
        self.join(api, ev, ticket, 2)
        self.join(api, ev, ticket, 3)
        admin_api.post(f"/attendees/{holder['attendees'][0]['id']}/cancel", {"refund": False})
        WaitlistEntry.objects.filter(status="offered").update(
            offer_expires_at=timezone.now() - timedelta(seconds=1)
        )
        expire_offers()
        assert list(WaitlistEntry.objects.order_by("pk").values_list("status", flat=True)) == [
            "expired",
            "offered",
        ]

    def test_the_place_stays_counted_while_offered(
        self, api: Api, admin_api: Api, full: Any
    ) -> None:
        ev, ticket, holder = full
        self.join(api, ev, ticket, 2)
        admin_api.post(f"/attendees/{holder['attendees'][0]['id']}/cancel", {"refund": False})
        assert EventItem.objects.get(pk=ticket.pk).sold == 1


def _token(text: str) -> str:
    return text.split("waitlist token: ", 1)[1].split()[0]
