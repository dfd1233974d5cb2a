"""Billing's service boundaries: the lookups the API handlers no longer do themselves, the
typed results of the payment and invoice services, and the row locks' lookups."""

from __future__ import annotations

import pytest
from django.db import transaction

from tessera.billing.gateways.base import PaymentResult
from tessera.billing.invoices import (
    LineSpec,
    create_draft_invoice,
    get_invoice,
    get_invoice_pdf,
    issue_invoice,
)
from tessera.billing.lock_objects import lock_transaction_for_intent
from tessera.billing.models import Invoice, Transaction
from tessera.billing.reconcile import ReconcileReport
from tessera.billing.services import cancel_transaction, capture_transaction, record_result
from tessera.billing.settlement import register_settler
from tessera.core.errors import NotFound
from tessera.crm.models import Contact

pytestmark = pytest.mark.django_db

PURPOSE = "test_boundaries"
LINE = LineSpec("itm_1", "att_1", "Ticket", 1, 1000, 0, 0, False)


@pytest.fixture
def contact() -> Contact:
    return Contact.objects.create(first_name="Ada", last_name="Lovelace", email="ada@example.com")


@pytest.fixture
def settled() -> list[str]:
    seen: list[str] = []
    register_settler(PURPOSE, lambda txn: seen.append(txn.status))
    return seen


def payment(contact: Contact, status: str = Transaction.Status.PENDING) -> Transaction:
    return Transaction.objects.create(
        contact=contact, amount=1000, currency="USD", purpose=PURPOSE, purpose_id="x",
        status=status, stripe_payment_intent_id=f"pi_{status}",
    )  # fmt: skip


def draft(contact: Contact) -> Invoice:
    return create_draft_invoice(bill_to=contact, currency="EUR", lines=[LINE], reference="r")


def test_capturing_an_unknown_payment_is_not_found() -> None:
    with pytest.raises(NotFound):
        capture_transaction("txn_missing")


def test_canceling_an_unknown_payment_is_not_found() -> None:
    with pytest.raises(NotFound):
        cancel_transaction("txn_missing")


def test_record_result_moves_a_pending_payment_and_settles_it(
    contact: Contact, settled: list[str]
) -> None:
    txn = payment(contact)
    update = record_result(txn.pk, PaymentResult("failed", txn.stripe_payment_intent_id))
    assert (update.changed, update.transaction.status, settled) == (True, "failed", ["failed"])


def test_record_result_never_moves_a_captured_payment_back(
    contact: Contact, settled: list[str]
) -> None:
    txn = payment(contact, Transaction.Status.CAPTURED)
    update = record_result(txn.pk, PaymentResult("requires_capture", txn.stripe_payment_intent_id))
    txn.refresh_from_db()
    assert (update.changed, txn.status, settled) == (False, "captured", [])


def test_the_locked_payment_of_an_event_is_found_by_our_id_when_stripes_is_unknown(
    contact: Contact,
) -> None:
    txn = payment(contact)
    with transaction.atomic():
        found = lock_transaction_for_intent("pi_never_saved", txn.pk)
    assert found is not None
    assert found.pk == txn.pk


def test_an_event_naming_no_payment_of_ours_locks_none(contact: Contact) -> None:
    payment(contact)
    with transaction.atomic():
        assert lock_transaction_for_intent("pi_unknown", "") is None


def test_a_draft_pdf_is_named_by_the_invoice_id(contact: Contact) -> None:
    invoice = draft(contact)
    pdf = get_invoice_pdf(invoice.pk)
    assert pdf.filename == f"{invoice.pk}.pdf"


def test_an_issued_pdf_is_named_by_its_number(contact: Contact) -> None:
    with transaction.atomic():
        invoice = issue_invoice(draft(contact).pk, paid=True)
    assert get_invoice_pdf(invoice.pk).filename == f"{invoice.number}.pdf"


def test_an_unknown_invoice_is_not_found() -> None:
    with pytest.raises(NotFound):
        get_invoice("inv_missing")


def test_a_refund_stripe_could_not_answer_counts_only_as_a_refund() -> None:
    report = ReconcileReport()
    report.no_answer("ref_1: Stripe unreachable (timeout)", unreachable=True, refund=True)
    assert (report.refunds_unreachable, report.unreachable, report.refunds_unchanged) == (1, 0, 0)
