"""The events admin: every page renders with real records; staff check in and cancel from
the attendee list; counters of places are shown, never editable."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from tessera.events.models import Attendee, EventItem
from tests.support.api import Api
from tests.support.events import attendee, body, content, event, item, promo, question

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db: None) -> Client:
    user = get_user_model().objects.create_superuser("door", "door@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def registered(api: Api) -> dict:
    ev = event()
    ticket = item(ev, price=0, capacity=3)
    question(ev)
    promo(ev, code="ALL", percent_off=10)
    return content(api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket))))


def test_every_events_page_renders(staff: Client, registered: dict) -> None:
    broken = []
    for model in admin.site._registry:
        opts = model._meta
        if opts.app_label not in ("events", "billing"):
            continue
        obj = model._default_manager.first()
        pages = [reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")]
        if obj is not None:
            pages.append(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)])
            )
        broken += [p for p in pages if staff.get(p).status_code != 200]
    assert broken == []


def act(staff: Client, action: str, attendee_id: str) -> None:
    staff.post(
        reverse("admin:events_attendee_changelist"),
        {"action": action, "_selected_action": [attendee_id]},
    )


def test_staff_check_in_from_the_list(staff: Client, registered: dict) -> None:
    act(staff, "check_in_selected", registered["attendees"][0]["id"])
    assert Attendee.objects.get().status == "checked_in"


def test_staff_cancel_from_the_list(staff: Client, registered: dict) -> None:
    act(staff, "cancel_selected", registered["attendees"][0]["id"])
    assert EventItem.objects.get().sold == 0


def test_the_counters_are_read_only(staff: Client, registered: dict) -> None:
    page = staff.get(reverse("admin:events_event_change", args=[quote(registered["event_id"])]))
    assert b'name="items-0-sold"' not in page.content
