"""The events app's background jobs: confirmations, waitlist offers, expired holds."""

from __future__ import annotations

from django_tasks import task

from tessera.events import confirmation, outcome, waitlist


@task()
def send_confirmation_task(checkout_id: str) -> int:
    """Render and queue the checkout's confirmation emails (made here, not in the request:
    the PDF, the calendar file and the QR codes are built when the email is sent)."""
    return confirmation.queue_confirmations(checkout_id)


@task()
def offer_places_task(event_id: str) -> int:
    return waitlist.offer_places(event_id)


@task()
def expire_holds_task() -> int:
    """Holds whose payment never came, and waitlist offers nobody took up."""
    return outcome.expire_holds() + waitlist.expire_offers()


@task()
def refund_unplaced_task(transaction_id: str) -> str:
    """Money captured for places that were no longer free: refunded in full."""
    from tessera.billing.refunds import refund_transaction

    refund = refund_transaction(
        transaction_id, reason="the places were released before the payment came in"
    )
    return refund.pk
