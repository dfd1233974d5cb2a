from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tessera.core.apikeys import create_api_key
from tessera.core.models import IdempotencyKey
from tessera.crm.services import create_account, create_contact
from tessera.notifications.models import OutboundEmail
from tessera.notifications.services import queue_email


@pytest.fixture
def staff(db: None) -> Client:
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def test_every_admin_page_renders(staff: Client) -> None:
    account = create_account({"name": "Acme"}).record
    contact = create_contact({"last_name": "Lovelace", "account_id": account.pk}).record
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
    assert email.to in page and "failed" in page

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
        create_contact({"first_name": "Ada", "last_name": f"L{i}", "email": f"a{i}@example.com"},
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
