"""The billing app's row locks, all in one place (rule 3).

Each takes ``SELECT ... FOR UPDATE`` and so must be called inside an atomic block: the
lock is held until that database transaction ends, and outside one Django refuses the
query. None of them is ever held across a call to Stripe (rule 4). Each locks one row;
a lock on several rows at once would take them in primary-key order, so that two callers
never wait for each other in a cycle.
"""

from __future__ import annotations

from tessera.billing.models import Invoice, Refund, Transaction
from tessera.core.lookup import get_by_id


def lock_transaction(transaction_id: str) -> Transaction:
    """The payment, its row locked until the surrounding transaction ends. Must be called
    inside an atomic block. ``Transaction.DoesNotExist`` for an unknown id: callers lock
    a payment they have already read."""
    return Transaction.objects.select_for_update().get(pk=transaction_id)


def lock_transaction_for_intent(payment_intent_id: str, transaction_id: str) -> Transaction | None:
    """The payment a Stripe event is about, locked: by its PaymentIntent id, else by our
    own id (the metadata we sent with it); None when neither names one. Must be called
    inside an atomic block."""
    locked = Transaction.objects.select_for_update()
    if payment_intent_id:
        found = locked.filter(stripe_payment_intent_id=payment_intent_id).first()
        if found:
            return found
    return locked.filter(pk=transaction_id).first() if transaction_id else None


def lock_refund(refund_id: str) -> Refund:
    """The refund with its payment and the payment's contact, locked until the surrounding
    transaction ends (every path that moves a refund's status goes through here). Must be
    called inside an atomic block."""
    locked = Refund.objects.select_for_update().select_related("transaction__contact")
    return locked.get(pk=refund_id)


def lock_invoice(invoice_id: str) -> Invoice:
    """The invoice with its bill-to contact, its row locked until the transaction ends
    (NotFound if unknown). Every path that changes an invoice or credits it locks it here
    first, and only then the number counter, so no two paths deadlock. Must be called
    inside an atomic block."""
    locked = Invoice.objects.select_for_update(of=("self",)).select_related("bill_to")
    return get_by_id(locked.order_by("pk"), invoice_id, "invoice")
