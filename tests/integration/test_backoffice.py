from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tessera.billing.models import PaymentMethod, Refund, StripeEvent, Transaction
from tessera.core.apikeys import create_api_key
from tessera.core.models import IdempotencyKey
from tessera.crm.inputs import AccountInput, ContactInput
from tessera.crm.models import Contact
from tessera.crm.services import create_account, create_contact
from tessera.loyalty.credit import settle_topup
from tessera.loyalty.models import Member, WalletTransaction
from tessera.notifications.models import OutboundEmail
from tessera.notifications.services import queue_email
from tests.support.loyalty import member, program


@pytest.fixture
def staff(db: None) -> Client:
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def test_every_admin_page_renders(staff: Client) -> None:
    account = create_account(AccountInput(name="Acme")).record
    contact = create_contact(ContactInput(last_name="Lovelace", account_id=account.pk)).record
    queue_email("welcome", to="a@example.com", context={}, contact=contact)
    create_api_key("k")
    for model, _ in admin.site._registry.items():
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        assert staff.get(changelist).status_code == 200, changelist
        obj = model._default_manager.first()
        if obj is not None:
            change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            assert staff.get(change).status_code == 200, change


def test_failed_email_is_visible_and_can_be_retried_from_the_admin(staff: Client) -> None:
    email = queue_email("welcome", to="a@example.com", context={})
    OutboundEmail.objects.filter(pk=email.pk).update(
        status=OutboundEmail.Status.FAILED, attempts=6, last_error="SMTPServerDisconnected: gone"
    )
    url = reverse("admin:notifications_outboundemail_changelist")
    page = staff.get(url, {"status__exact": "failed"}).content.decode()
    assert email.to in page
    assert "failed" in page

    staff.post(url, {"action": "retry", "_selected_action": [email.pk]})
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.QUEUED
    assert email.attempts == 0


def test_cleanup_prunes_only_expired_idempotency_keys(db: None) -> None:
    key, _ = create_api_key("k")
    old = IdempotencyKey.objects.create(
        api_key=key, key="old", method="POST", path="/x", fingerprint="f", locked_at=timezone.now()
    )
    IdempotencyKey.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    IdempotencyKey.objects.create(
        api_key=key, key="new", method="POST", path="/x", fingerprint="f", locked_at=timezone.now()
    )
    out = StringIO()
    call_command("cleanup", stdout=out)
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
    assert "Deleted 1 idempotency key" in out.getvalue()


def test_scheduler_enqueues_each_due_job_once(db: None, settings) -> None:  # type: ignore[no-untyped-def]
    from django_tasks_db.models import DBTaskResult

    from tessera.core.models import ScheduledJob
    from tessera.core.scheduler import enqueue_due

    settings.TESSERA_PERIODIC_TASKS = {
        "expire_points": ("tessera.loyalty.tasks.expire_points_task", 3600)
    }
    assert enqueue_due() == ["expire_points"]
    assert enqueue_due() == []  # not due again for an hour
    assert DBTaskResult.objects.filter(task_path__endswith="expire_points_task").count() == 1
    ScheduledJob.objects.update(next_run_at=timezone.now() - timedelta(seconds=1))
    assert enqueue_due() == ["expire_points"]


def test_deleting_selected_contacts_removes_their_match_keys(staff: Client) -> None:
    from tessera.crm.matching.models import MatchKey

    people = [
        create_contact(ContactInput(first_name="Ada", last_name=f"L{i}", email=f"a{i}@example.com"),
                       check_duplicates=False).record
        for i in range(3)
    ]  # fmt: skip
    assert MatchKey.objects.filter(object_id__in=[p.pk for p in people]).exists()
    r = staff.post(
        reverse("admin:crm_contact_changelist"),
        {"action": "delete_selected", "_selected_action": [p.pk for p in people[:2]],
         "post": "yes"},
    )  # fmt: skip
    assert r.status_code == 302
    assert not MatchKey.objects.filter(object_id__in=[p.pk for p in people[:2]]).exists()
    assert MatchKey.objects.filter(object_id=people[2].pk).exists()


def test_a_rule_form_with_a_blank_criterion_is_an_error_not_a_crash(staff: Client) -> None:
    from tessera.crm.matching.models import MatchingRule

    url = reverse("admin:crm_matchingrule_add")
    form = {
        "name": "Broken", "object": "contact", "logic": "1", "action": "allow",
        "active": "on", "candidate_limit": "200",
        "criteria-TOTAL_FORMS": "1", "criteria-INITIAL_FORMS": "0",
        "criteria-MIN_NUM_FORMS": "0", "criteria-MAX_NUM_FORMS": "1000",
        "criteria-0-number": "1", "criteria-0-field": "", "criteria-0-method": "exact",
        "criteria-0-threshold": "100",
    }  # fmt: skip
    before = MatchingRule.objects.count()
    r = staff.post(url, form)
    assert r.status_code == 200  # the form again, with its errors
    assert b"This field is required" in r.content
    assert MatchingRule.objects.count() == before


def test_an_edited_name_variant_reaches_the_rule_cache(db: None) -> None:
    from tessera.crm.matching import rules
    from tessera.crm.matching.models import NameVariant

    variant = NameVariant.objects.create(name="alexander", variant="xander")
    before = rules._version()
    variant.variant = "sasha"
    variant.save()
    assert rules._version() != before


# --- card payments ---------------------------------------------------------------------------

TXN_KEY = "a1" * 32  # stand-ins for the request_key hashes, which staff must never see
REFUND_KEY = "b2" * 32
CLIENT_SECRET = "pi_admin_1_secret_s3cr3t"


def _card_payment(contact: Contact, n: int = 1) -> Transaction:
    card = PaymentMethod.objects.create(contact=contact, stripe_id=f"pm_admin_{n}", brand="visa",
                                        last4="4242", exp_month=12, exp_year=2030)  # fmt: skip
    return Transaction.objects.create(
        contact=contact, payment_method=card, amount=2500, currency="USD", status="captured",
        purpose="checkout", purpose_id=f"ord_{n}", stripe_payment_intent_id=f"pi_admin_{n}",
    )  # fmt: skip


@pytest.fixture
def payment(db: None) -> Transaction:
    """A captured $25.00 payment by card, $5.00 of it refunded, and its Stripe event."""
    contact = create_contact(ContactInput(first_name="Ada", last_name="Lovelace", email="ada@example.com"), check_duplicates=False).record  # fmt: skip
    txn = _card_payment(contact)
    Transaction.objects.filter(pk=txn.pk).update(request_key=TXN_KEY, refunded_amount=500)
    Refund.objects.create(transaction=txn, amount=500, status="succeeded",
                          stripe_refund_id="re_admin_1", request_key=REFUND_KEY)  # fmt: skip
    StripeEvent.objects.create(id="evt_admin_1", type="payment_intent.succeeded", payload={
        "id": "evt_admin_1", "type": "payment_intent.succeeded",
        "data": {"object": {"id": "pi_admin_1", "object": "payment_intent", "amount": 2500,
                            "client_secret": CLIENT_SECRET}},
    })  # fmt: skip
    txn.refresh_from_db()
    return txn


@pytest.fixture
def topup(db: None) -> Transaction:
    """A settled wallet top-up: the member's points were credited for it."""
    m = member(program())
    txn = Transaction.objects.create(contact=m.contact, amount=500, currency="USD",
                                     status="captured", purpose="wallet_topup", purpose_id=m.pk)  # fmt: skip
    settle_topup(txn)
    return txn


def _admin_url(obj: Any, view: str = "change") -> str:
    opts = obj._meta
    args = [] if view in ("changelist", "add") else [quote(obj.pk)]  # as the admin quotes ids
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def _billing_record(kind: str, txn: Transaction) -> Any:
    return {
        "transaction": txn,
        "refund": txn.refunds.get(),
        "paymentmethod": txn.payment_method,
        "stripeevent": StripeEvent.objects.get(),
    }[kind]


BILLING_KINDS = ["transaction", "refund", "paymentmethod", "stripeevent"]


@pytest.mark.parametrize("kind", BILLING_KINDS)
def test_billing_changelist_lists_the_record(
    staff: Client, payment: Transaction, kind: str
) -> None:
    record = _billing_record(kind, payment)
    r = staff.get(_admin_url(record, "changelist"))
    assert r.status_code == 200
    assert record.pk in r.content.decode()


@pytest.mark.parametrize("kind", BILLING_KINDS)
def test_billing_change_page_renders(staff: Client, payment: Transaction, kind: str) -> None:
    assert staff.get(_admin_url(_billing_record(kind, payment))).status_code == 200


def test_transaction_page_shows_the_amount_in_major_units(
    staff: Client, payment: Transaction
) -> None:
    assert "$25.00" in staff.get(_admin_url(payment)).content.decode()


def test_transaction_page_lists_its_refunds_inline(staff: Client, payment: Transaction) -> None:
    page = staff.get(_admin_url(payment)).content.decode()
    assert _admin_url(payment.refunds.get()) in page


def test_transaction_page_links_to_its_card(staff: Client, payment: Transaction) -> None:
    page = staff.get(_admin_url(payment)).content.decode()
    assert _admin_url(payment.payment_method) in page


def test_top_up_page_links_to_the_member(staff: Client, topup: Transaction) -> None:
    page = staff.get(_admin_url(topup)).content.decode()
    assert _admin_url(Member.objects.get(pk=topup.purpose_id)) in page


def test_top_up_page_links_to_the_wallet_credit(staff: Client, topup: Transaction) -> None:
    credited = WalletTransaction.objects.get(type="credit_purchased")
    assert _admin_url(credited) in staff.get(_admin_url(topup)).content.decode()


@pytest.mark.parametrize("kind", BILLING_KINDS)
def test_billing_records_cannot_be_added(staff: Client, payment: Transaction, kind: str) -> None:
    assert staff.get(_admin_url(_billing_record(kind, payment), "add")).status_code == 403


def _unreferenced(kind: str, payment: Transaction) -> Any:
    """A record nothing protects from deletion (the fixture's payment has a refund, its card
    a payment), so only the admin itself can be what refuses to delete it."""
    if kind == "transaction":
        return _card_payment(payment.contact, 2)
    if kind == "paymentmethod":
        return PaymentMethod.objects.create(contact=payment.contact, stripe_id="pm_unused")
    return _billing_record(kind, payment)


def test_the_delete_view_does_not_delete_a_transaction(staff: Client, payment: Transaction) -> None:
    txn = _unreferenced("transaction", payment)
    staff.post(_admin_url(txn, "delete"), {"post": "yes"})
    assert Transaction.objects.filter(pk=txn.pk).exists()


@pytest.mark.parametrize("kind", BILLING_KINDS)
def test_billing_records_cannot_be_deleted_in_bulk(
    staff: Client, payment: Transaction, kind: str
) -> None:
    record = _unreferenced(kind, payment)
    staff.post(_admin_url(record, "changelist"),
               {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"})  # fmt: skip
    assert type(record).objects.filter(pk=record.pk).exists()


def test_contact_page_links_to_its_transaction(staff: Client, payment: Transaction) -> None:
    page = staff.get(_admin_url(payment.contact)).content.decode()
    assert _admin_url(payment) in page


def test_contact_page_links_to_its_saved_card(staff: Client, payment: Transaction) -> None:
    page = staff.get(_admin_url(payment.contact)).content.decode()
    assert _admin_url(payment.payment_method) in page


def test_member_page_links_to_its_top_up(staff: Client, topup: Transaction) -> None:
    page = staff.get(_admin_url(Member.objects.get(pk=topup.purpose_id))).content.decode()
    assert _admin_url(topup) in page


def test_transaction_changelist_runs_a_bounded_number_of_queries(
    staff: Client, django_assert_max_num_queries: Any
) -> None:
    for n in range(20):
        contact = create_contact(ContactInput(last_name=f"Payer {n}", email=f"p{n}@example.com"),
                                 check_duplicates=False).record  # fmt: skip
        _card_payment(contact, n)
    # 9 today: session, user, two counts, the page, the date drill-down and two filters.
    with django_assert_max_num_queries(10):
        r = staff.get(reverse("admin:billing_transaction_changelist"))
    assert r.status_code == 200


@pytest.mark.parametrize("kind", ["transaction", "refund"])
def test_request_keys_are_not_shown(staff: Client, payment: Transaction, kind: str) -> None:
    page = staff.get(_admin_url(_billing_record(kind, payment))).content.decode()
    assert TXN_KEY not in page
    assert REFUND_KEY not in page


def test_event_page_shows_the_payload_pretty_printed(staff: Client, payment: Transaction) -> None:
    page = staff.get(_admin_url(StripeEvent.objects.get())).content.decode()
    assert "\n      &quot;amount&quot;: 2500," in page


def test_event_page_hides_the_client_secret(staff: Client, payment: Transaction) -> None:
    page = staff.get(_admin_url(StripeEvent.objects.get())).content.decode()
    assert CLIENT_SECRET not in page


def test_event_page_links_to_its_transaction(staff: Client, payment: Transaction) -> None:
    page = staff.get(_admin_url(StripeEvent.objects.get())).content.decode()
    assert _admin_url(payment) in page


def test_the_contacts_payments_list_holds_only_theirs(
    staff: Client, payment: Transaction, topup: Transaction
) -> None:
    page = staff.get(_admin_url(payment, "changelist"), {"contact": payment.contact_id})
    assert topup.pk not in page.content.decode()
