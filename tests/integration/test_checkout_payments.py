"""Card checkouts that do not end in the request: 3-D Secure finished by the webhook, Stripe
unreachable and the reconciler, a capture that arrives after the places were released;
and the confirmation the worker sends."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
import stripe
from django.db import transaction
from django.utils import timezone

from tessera.billing.models import Transaction
from tessera.events import outcome
from tessera.events.confirmation import build_attachments, queue_confirmations
from tessera.events.lock_objects import lock_checkout
from tessera.events.models import Attendee, Checkout, EventItem
from tessera.events.outcome import expire_holds
from tessera.notifications.models import OutboundEmail
from tests.support.api import Api, assert_problem
from tests.support.billing import TimeoutAfterCharge, reconcile
from tests.support.events import attendee, body, by_card, content, event, item
from tests.support.stripe import UseGateway, authenticate, card, clearing, signed

pytestmark = pytest.mark.django_db


def succeeded(api: Api, intent: dict[str, Any], event_id: str = "evt_3ds") -> Any:
    event = {
        "id": event_id,
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "data": {"object": intent},
    }
    payload, sig = signed(event)
    return api.client.post(
        "/api/v1/webhooks/stripe",
        payload,
        content_type="application/json",
        headers={"Stripe-Signature": sig},
    )


@pytest.fixture
def three_d_secure(api: Api, stripe_env: stripe.StripeClient) -> tuple[dict[str, Any], Any]:
    ev = event(currency="USD")
    ticket = item(ev, price=2500, capacity=1)
    pm = card(stripe_env, "4000002760003184")
    r = api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket), payment=by_card(pm)))
    assert r.status_code == 202, r.content
    return content(r), ticket


class TestThreeDSecureFinished:
    def test_a_capture_after_the_places_went_back_registers_if_they_are_free(
        self, api: Api, stripe_env: stripe.StripeClient, three_d_secure: Any
    ) -> None:
        waiting, _ = three_d_secure
        with transaction.atomic():
            outcome.fail(
                lock_checkout(Checkout.objects.get().pk), "hold_expired", "", status="expired"
            )
        succeeded(
            api, authenticate(stripe_env, Transaction.objects.get(), waiting["client_secret"])
        )
        assert Checkout.objects.get().status == "paid"

    def test_the_webhook_completes_the_checkout(
        self, api: Api, stripe_env: stripe.StripeClient, three_d_secure: Any
    ) -> None:
        waiting, _ = three_d_secure
        txn = Transaction.objects.get()
        succeeded(api, authenticate(stripe_env, txn, waiting["client_secret"]))
        assert Checkout.objects.get().status == "paid"

    def test_the_attendee_is_registered_then(
        self, api: Api, stripe_env: stripe.StripeClient, three_d_secure: Any
    ) -> None:
        waiting, _ = three_d_secure
        txn = Transaction.objects.get()
        succeeded(api, authenticate(stripe_env, txn, waiting["client_secret"]))
        assert Attendee.objects.get().status == "registered"

    def test_a_second_delivery_changes_nothing(
        self, api: Api, stripe_env: stripe.StripeClient, three_d_secure: Any
    ) -> None:
        waiting, _ = three_d_secure
        intent = authenticate(stripe_env, Transaction.objects.get(), waiting["client_secret"])
        succeeded(api, intent)
        succeeded(api, intent, "evt_3ds_again")
        assert OutboundEmail.objects.count() == 0  # the confirmation is the worker's, once

    def test_a_capture_after_the_hold_expired_takes_a_free_place_again(
        self, api: Api, stripe_env: stripe.StripeClient, three_d_secure: Any
    ) -> None:
        waiting, _ = three_d_secure
        txn = Transaction.objects.get()
        intent = authenticate(stripe_env, txn, waiting["client_secret"])
        Checkout.objects.update(hold_expires_at=timezone.now() - timedelta(seconds=1))
        expire_holds()  # Stripe refuses to cancel a payment that succeeded: it is completed
        assert Checkout.objects.get().status == "paid", intent["status"]

    def test_a_capture_for_places_sold_meanwhile_is_refunded(
        self, api: Api, stripe_env: stripe.StripeClient, three_d_secure: Any
    ) -> None:
        waiting, ticket = three_d_secure
        with transaction.atomic():  # the hold runs out before the buyer finishes...
            outcome.fail(
                lock_checkout(Checkout.objects.get().pk), "hold_expired", "", status="expired"
            )
        api.post(
            f"/events/{ticket.event_id}/checkout",
            body(attendee(ticket, 7), payment=by_card(card(stripe_env))),
        )  # ...sold
        first = Transaction.objects.order_by("created_at").first()
        assert first is not None
        succeeded(api, authenticate(stripe_env, first, waiting["client_secret"]))
        assert [t for t in _tasks() if t.endswith("refund_unplaced_task")] != []

    def test_such_a_checkout_registers_nobody(
        self, api: Api, stripe_env: stripe.StripeClient, three_d_secure: Any
    ) -> None:
        waiting, ticket = three_d_secure
        first = Checkout.objects.get()
        with transaction.atomic():
            outcome.fail(lock_checkout(first.pk), "hold_expired", "", status="expired")
        api.post(
            f"/events/{ticket.event_id}/checkout",
            body(attendee(ticket, 7), payment=by_card(card(stripe_env))),
        )
        paid = Transaction.objects.get(purpose_id=first.pk)
        succeeded(api, authenticate(stripe_env, paid, waiting["client_secret"]))
        assert Attendee.objects.get(checkout=first).status == "cancelled"


def _tasks() -> list[str]:
    from django_tasks_db.models import DBTaskResult

    return list(DBTaskResult.objects.values_list("task_path", flat=True))


def test_stripe_unreachable_answers_502_and_holds_the_place(
    api: Api, stripe_env: stripe.StripeClient, use_gateway: UseGateway
) -> None:
    ev = event(currency="USD")
    ticket = item(ev, price=2500, capacity=3)
    with use_gateway(TimeoutAfterCharge()):
        r = api.post(
            f"/events/{ev.pk}/checkout", body(attendee(ticket), payment=by_card(card(stripe_env)))
        )
    assert_problem(r, 502, "payment_gateway_unavailable")
    assert EventItem.objects.get(pk=ticket.pk).sold == 1


def test_the_reconciler_completes_a_checkout_stripe_charged(
    api: Api, stripe_env: stripe.StripeClient, use_gateway: UseGateway
) -> None:
    ev = event(currency="USD")
    ticket = item(ev, price=2500, capacity=3)
    with use_gateway(TimeoutAfterCharge()):
        api.post(
            f"/events/{ev.pk}/checkout", body(attendee(ticket), payment=by_card(card(stripe_env)))
        )
    reconcile()
    assert Checkout.objects.get().status == "paid"


def test_a_second_reconcile_registers_nothing_more(
    api: Api, stripe_env: stripe.StripeClient, use_gateway: UseGateway
) -> None:
    ev = event(currency="USD")
    ticket = item(ev, price=2500, capacity=3)
    with use_gateway(TimeoutAfterCharge()):
        api.post(
            f"/events/{ev.pk}/checkout", body(attendee(ticket), payment=by_card(card(stripe_env)))
        )
    reconcile()
    reconcile()
    assert (EventItem.objects.get(pk=ticket.pk).sold, clearing("USD")) == (1, 2500)


class TestConfirmation:
    @pytest.fixture
    def paid(self, api: Api, stripe_env: stripe.StripeClient) -> dict[str, Any]:
        ev = event(currency="USD")
        ticket = item(ev, price=2500)
        r = api.post(
            f"/events/{ev.pk}/checkout",
            body(attendee(ticket, 1), attendee(ticket, 2), payment=by_card(card(stripe_env))),
        )
        return content(r)

    def test_it_is_queued_by_the_worker_not_the_request(self, paid: dict[str, Any]) -> None:
        assert OutboundEmail.objects.count() == 0

    def test_the_buyer_and_the_other_attendee_are_written_to(self, paid: dict[str, Any]) -> None:
        queue_confirmations(paid["id"])
        assert sorted(OutboundEmail.objects.values_list("template", flat=True)) == [
            "attendee_ticket",
            "checkout_confirmation",
        ]

    def test_the_buyer_gets_the_invoice_the_calendar_and_every_ticket(
        self, paid: dict[str, Any]
    ) -> None:
        names = sorted(a.mimetype for a in build_attachments(paid["id"]))
        assert names == ["application/pdf", "image/png", "image/png", "text/calendar"]

    def test_an_attendee_gets_only_their_own_ticket(self, paid: dict[str, Any]) -> None:
        own = build_attachments(f"{paid['id']}/{paid['attendees'][1]['id']}")
        assert [a.content_id for a in own if a.content_id] == [f"qr-{paid['attendees'][1]['id']}"]

    def test_the_summary_says_the_total(self, paid: dict[str, Any]) -> None:
        queue_confirmations(paid["id"])
        email = OutboundEmail.objects.get(template="checkout_confirmation")
        assert "Total: $50.00" in email.text_body
