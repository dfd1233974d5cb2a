"""The staff pages: the dashboard and its charts, the door's check-in, the attendee lists."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tessera.events.checkin import check_in
from tessera.events.checkout import check_out
from tessera.events.models import Attendee, Event, EventItem
from tessera.events.requests import AttendeeIn, CheckoutIn, LineIn, PersonIn
from tessera.loyalty.activities import complete_activity
from tessera.loyalty.models import Program
from tessera.loyalty.ordering import OrderLineSpec, place_order
from tessera.portal.models import FormSubmission
from tessera.portal.staff.metrics import last_weeks
from tessera.portal.submissions import attempt
from tests.support.events import event, item
from tests.support.loyalty import member, product, program, question

pytestmark = pytest.mark.django_db

BACKEND = "django.contrib.auth.backends.ModelBackend"
KEY = "staff-form-key-0001"


def _client(username: str, *, is_staff: bool) -> Client:
    user = User.objects.create_user(username, f"{username}@tessera.test", is_staff=is_staff)
    client = Client()
    client.force_login(user, backend=BACKEND)
    return client


@pytest.fixture
def staff() -> Client:
    return _client("door", is_staff=True)


@pytest.fixture
def summit() -> Event:
    return event(name="Summit")


@pytest.fixture
def ticket(summit: Event) -> EventItem:
    return item(summit, price=0, name="Free pass")


def register(ticket: EventItem, first: str = "Grace", last: str = "Hopper") -> Attendee:
    """A registered attendee with a signed code, by a free checkout."""
    person = PersonIn(first, last, f"{first.lower()}@example.org")
    done = check_out(
        CheckoutIn(
            event_id=ticket.event_id,
            buyer=person,
            attendees=(AttendeeIn(person=person, items=(LineIn(ticket.pk),)),),
        )
    )
    return Attendee.objects.get(checkout_id=done.checkout_id)


def forge(code: str) -> str:
    """The code with one signature character changed (never to itself)."""
    at = len(code) - 10
    return code[:at] + ("B" if code[at] == "A" else "A") + code[at + 1 :]


def text(response: Any) -> str:
    return str(response.content.decode())


PAGES = [
    "/staff/",
    "/staff/charts/points.svg",
    "/staff/check-in",
    "/staff/events",
    "/staff/events/{event}/attendees",
    "/staff/events/{event}/attendees.csv",
]


# --- who may see the staff pages ----------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_signed_out_goes_to_sign_in(path: str, summit: Event) -> None:
    page = path.format(event=summit.pk)
    response = Client().get(page)
    assert (response.status_code, response["Location"]) == (302, f"/signin?next={page}")


@pytest.mark.parametrize("path", PAGES)
def test_a_member_gets_404(path: str, summit: Event) -> None:
    response = _client("bob", is_staff=False).get(path.format(event=summit.pk))
    assert response.status_code == 404


def test_a_member_cannot_post_a_check_in(ticket: EventItem) -> None:
    guest = register(ticket)
    _client("bob", is_staff=False).post("/staff/check-in", {"code": guest.code})
    assert Attendee.objects.get(pk=guest.pk).status == Attendee.Status.REGISTERED


# --- dashboard ----------------------------------------------------------------------------


@pytest.fixture
def club() -> Program:
    prog = program(low_balance_threshold=50)
    ada = member(prog, email="ada@example.com", points=500)
    member(prog, email="bob@example.com", points=20)  # below the threshold
    place_order(ada.pk, [OrderLineSpec(product(prog, 120).pk, 1)])
    attempt(lambda: place_order(ada.pk, [OrderLineSpec(product(prog, 9999).pk, 1)]))
    activity = question(prog, points=30)
    complete_activity(ada.pk, activity.pk, answer="Paris")
    return prog


def _this_week_row(page: str, *cells: str) -> bool:
    label = f"{last_weeks()[-1].start:%Y-%m-%d}"
    tds = "".join(f'<td class="num">{c}</td>' for c in cells)
    return f'<tr><th scope="row">{label}</th>{tds}</tr>' in page


def test_dashboard_answers(staff: Client) -> None:
    assert staff.get("/staff/").status_code == 200


def test_dashboard_shows_points_issued_and_redeemed_this_week(staff: Client, club: Program) -> None:
    assert _this_week_row(text(staff.get("/staff/")), "30 pts", "120 pts")


def test_dashboard_shows_the_refusal_this_week(staff: Client, club: Program) -> None:
    assert _this_week_row(text(staff.get("/staff/")), "1")


def test_dashboard_counts_low_balances(staff: Client, club: Program) -> None:
    page = text(staff.get("/staff/"))
    assert re.search(r'<strong class="staff-count">1</strong>\s*member is below', page)


def test_dashboard_lists_the_low_balance_member(staff: Client, club: Program) -> None:
    assert "bob@example.com" in text(staff.get("/staff/"))


def test_dashboard_shows_registrations_and_check_ins(staff: Client, ticket: EventItem) -> None:
    register(ticket, "Grace")
    check_in(register(ticket, "Alan").pk)
    page = text(staff.get("/staff/"))
    registered = '<tr><th scope="row">Summit</th><td class="num">2</td></tr>'
    checked_in = '<tr><th scope="row">Summit</th><td class="num">1</td><td class="num">2</td></tr>'
    assert registered in page
    assert checked_in in page


def test_dashboard_links_each_event_attendees(staff: Client, summit: Event) -> None:
    assert f"/staff/events/{summit.pk}/attendees" in text(staff.get("/staff/"))


def test_dashboard_query_count_does_not_grow_with_events(staff: Client, ticket: EventItem) -> None:
    register(ticket)
    with CaptureQueriesContext(connection) as one:
        staff.get("/staff/")
    for n in range(3):
        register(item(event(name=f"Other {n}"), price=0), f"P{n}")
    with CaptureQueriesContext(connection) as four:
        staff.get("/staff/")
    assert len(four) == len(one)


@pytest.mark.parametrize(
    "name", ["points", "credit", "refused", "registrations", "revenue", "checkins"]
)
def test_chart_is_svg(staff: Client, club: Program, ticket: EventItem, name: str) -> None:
    assert staff.get(f"/staff/charts/{name}.svg")["Content-Type"] == "image/svg+xml"


def test_chart_has_no_script(staff: Client, club: Program) -> None:
    assert b"<script" not in staff.get("/staff/charts/points.svg").content


def test_unknown_chart_is_404(staff: Client) -> None:
    assert staff.get("/staff/charts/nope.svg").status_code == 404


# --- check-in -----------------------------------------------------------------------------


def test_check_in_page_has_the_form(staff: Client) -> None:
    page = text(staff.get("/staff/check-in"))
    assert 'name="code"' in page
    assert 'name="csrfmiddlewaretoken"' in page


def test_valid_code_checks_in(staff: Client, ticket: EventItem) -> None:
    guest = register(ticket)
    staff.post("/staff/check-in", {"code": guest.code})
    assert Attendee.objects.get(pk=guest.pk).status == Attendee.Status.CHECKED_IN


def test_valid_code_answers_ok_with_the_name(staff: Client, ticket: EventItem) -> None:
    page = text(staff.post("/staff/check-in", {"code": register(ticket).code}))
    assert 'class="result ok"' in page
    assert "Grace Hopper" in page


def test_a_typed_code_in_lower_case_with_spaces_works(staff: Client, ticket: EventItem) -> None:
    guest = register(ticket)
    staff.post("/staff/check-in", {"code": f"  {guest.code[:40].lower()} {guest.code[40:]} "})
    assert Attendee.objects.get(pk=guest.pk).status == Attendee.Status.CHECKED_IN


def test_second_check_in_says_already(staff: Client, ticket: EventItem) -> None:
    guest = register(ticket)
    staff.post("/staff/check-in", {"code": guest.code})
    page = text(staff.post("/staff/check-in", {"code": guest.code}))
    assert 'class="result warn"' in page
    assert "Already checked in" in page


def test_forged_code_is_not_a_valid_ticket(staff: Client, ticket: EventItem) -> None:
    page = text(staff.post("/staff/check-in", {"code": forge(register(ticket).code)}))
    assert 'class="result bad"' in page
    assert "Not a valid ticket" in page


def test_forged_code_changes_nothing(staff: Client, ticket: EventItem) -> None:
    guest = register(ticket)
    staff.post("/staff/check-in", {"code": forge(guest.code)})
    assert Attendee.objects.get(pk=guest.pk).status == Attendee.Status.REGISTERED


def test_ticket_for_another_event_is_wrong_event(staff: Client, ticket: EventItem) -> None:
    other = event(name="Other")
    page = text(staff.post("/staff/check-in", {"code": register(ticket).code, "event": other.pk}))
    assert "Wrong event" in page
    assert "The ticket is for Summit." in page


def test_wrong_event_does_not_check_in(staff: Client, ticket: EventItem) -> None:
    guest = register(ticket)
    staff.post("/staff/check-in", {"code": guest.code, "event": event(name="Other").pk})
    assert Attendee.objects.get(pk=guest.pk).status == Attendee.Status.REGISTERED


def test_right_event_checks_in(staff: Client, ticket: EventItem) -> None:
    guest = register(ticket)
    staff.post("/staff/check-in", {"code": guest.code, "event": ticket.event_id})
    assert Attendee.objects.get(pk=guest.pk).status == Attendee.Status.CHECKED_IN


def test_cancelled_ticket_says_cancelled(staff: Client, ticket: EventItem) -> None:
    from tessera.events.cancellation import cancel_attendee

    guest = register(ticket)
    cancel_attendee(guest.pk, refund=False)
    page = text(staff.post("/staff/check-in", {"code": guest.code}))
    assert 'class="result bad"' in page
    assert "Cancelled" in page


def test_event_filter_preselects_the_event(staff: Client, summit: Event) -> None:
    page = text(staff.get(f"/staff/check-in?event={summit.pk}"))
    assert f'<option value="{summit.pk}" selected>' in page


def test_htmx_request_gets_only_the_result(staff: Client, ticket: EventItem) -> None:
    response = staff.post(
        "/staff/check-in", {"code": register(ticket).code}, headers={"HX-Request": "true"}
    )
    page = text(response)
    assert "Checked in" in page
    assert "<html" not in page
    assert 'name="code"' not in page


def test_htmx_request_with_no_code_answers_in_the_result(staff: Client) -> None:
    page = text(staff.post("/staff/check-in", {"code": ""}, headers={"HX-Request": "true"}))
    assert 'class="result warn"' in page


def test_full_page_post_without_code_shows_the_field_error(staff: Client) -> None:
    page = text(staff.post("/staff/check-in", {"code": ""}))
    assert 'class="errorlist"' in page


def test_check_in_page_allows_the_scanner_worker_only_there(staff: Client) -> None:
    policy = staff.get("/staff/check-in")["Content-Security-Policy"]
    assert "worker-src 'self' blob:" in policy


# --- attendees ----------------------------------------------------------------------------


@pytest.fixture
def crowd(ticket: EventItem) -> dict[str, Attendee]:
    people = {n: register(ticket, n, "Example") for n in ("Grace", "Alan", "Ada")}
    check_in(people["Alan"].pk)
    return people


def test_attendees_lists_everyone(staff: Client, summit: Event, crowd: dict[str, Attendee]) -> None:
    page = text(staff.get(f"/staff/events/{summit.pk}/attendees"))
    assert all(f"{n} Example" in page for n in crowd)


def test_attendees_search_by_name(staff: Client, summit: Event, crowd: dict[str, Attendee]) -> None:
    page = text(staff.get(f"/staff/events/{summit.pk}/attendees", {"q": "grace"}))
    assert "Grace Example" in page
    assert "Alan Example" not in page


def test_attendees_search_by_email(
    staff: Client, summit: Event, crowd: dict[str, Attendee]
) -> None:
    page = text(staff.get(f"/staff/events/{summit.pk}/attendees", {"q": "alan@example"}))
    assert "Alan Example" in page
    assert "Grace Example" not in page


def test_attendees_filter_by_status(
    staff: Client, summit: Event, crowd: dict[str, Attendee]
) -> None:
    page = text(staff.get(f"/staff/events/{summit.pk}/attendees", {"status": "checked_in"}))
    assert "Alan Example" in page
    assert "Ada Example" not in page


def test_attendees_pages(staff: Client, summit: Event, crowd: dict[str, Attendee]) -> None:
    from tessera.portal.staff import attendees

    attendees.PER_PAGE, before = 2, attendees.PER_PAGE
    try:
        page = text(staff.get(f"/staff/events/{summit.pk}/attendees", {"page": "2"}))
    finally:
        attendees.PER_PAGE = before
    assert "Page 2 of 2" in page
    assert "Grace Example" in page
    assert "Ada Example" not in page


def test_unknown_event_is_404(staff: Client) -> None:
    assert staff.get("/staff/events/evt_01JD3Z8Q6W1X2Y3Z4A5B6C7D8E/attendees").status_code == 404


def test_csv_export_has_the_attendees(
    staff: Client, summit: Event, crowd: dict[str, Attendee]
) -> None:
    response = staff.get(f"/staff/events/{summit.pk}/attendees.csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert sorted(r["first_name"] for r in rows) == ["Ada", "Alan", "Grace"]


def test_csv_export_filters_by_status(
    staff: Client, summit: Event, crowd: dict[str, Attendee]
) -> None:
    response = staff.get(f"/staff/events/{summit.pk}/attendees.csv", {"status": "checked_in"})
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["first_name"] for r in rows] == ["Alan"]


def test_csv_export_is_an_attachment(staff: Client, summit: Event) -> None:
    response = staff.get(f"/staff/events/{summit.pk}/attendees.csv")
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]


def test_check_in_button_checks_in(
    staff: Client, summit: Event, crowd: dict[str, Attendee]
) -> None:
    grace = crowd["Grace"]
    staff.post(f"/staff/events/{summit.pk}/attendees/{grace.pk}/check-in")
    assert Attendee.objects.get(pk=grace.pk).status == Attendee.Status.CHECKED_IN


def test_check_in_button_comes_back_to_the_filtered_list(
    staff: Client, summit: Event, crowd: dict[str, Attendee]
) -> None:
    response = staff.post(
        f"/staff/events/{summit.pk}/attendees/{crowd['Grace'].pk}/check-in", {"q": "gr"}
    )
    assert response["Location"] == f"/staff/events/{summit.pk}/attendees?q=gr"


def test_cancel_button_cancels(staff: Client, summit: Event, crowd: dict[str, Attendee]) -> None:
    grace = crowd["Grace"]
    staff.post(f"/staff/events/{summit.pk}/attendees/{grace.pk}/cancel", {"form_key": KEY})
    assert Attendee.objects.get(pk=grace.pk).status == Attendee.Status.CANCELLED


def test_cancel_twice_with_one_key_acts_once(
    staff: Client, summit: Event, crowd: dict[str, Attendee]
) -> None:
    url = f"/staff/events/{summit.pk}/attendees/{crowd['Grace'].pk}/cancel"
    first = staff.post(url, {"form_key": KEY, "refund": "on"})
    second = staff.post(url, {"form_key": KEY, "refund": "on"})
    assert second["Location"] == first["Location"]
    assert FormSubmission.objects.filter(key=KEY, action="staff_cancel").count() == 1


def test_second_cancel_shows_no_error(
    staff: Client, summit: Event, crowd: dict[str, Attendee]
) -> None:
    url = f"/staff/events/{summit.pk}/attendees/{crowd['Grace'].pk}/cancel"
    staff.post(url, {"form_key": KEY})
    staff.post(url, {"form_key": KEY})
    page = text(staff.get(f"/staff/events/{summit.pk}/attendees"))
    assert "already cancelled" not in page


def test_cancel_of_another_event_attendee_is_404(staff: Client, crowd: dict[str, Attendee]) -> None:
    other = event(name="Other")
    url = f"/staff/events/{other.pk}/attendees/{crowd['Grace'].pk}/cancel"
    assert staff.post(url, {"form_key": KEY}).status_code == 404


def test_list_offers_buttons_only_to_registered(
    staff: Client, summit: Event, crowd: dict[str, Attendee]
) -> None:
    page = text(staff.get(f"/staff/events/{summit.pk}/attendees"))
    assert page.count("Cancel ticket") == 2


def test_events_list_links_attendees(staff: Client, summit: Event) -> None:
    assert f"/staff/events/{summit.pk}/attendees" in text(staff.get("/staff/events"))


# --- closed weeks are summed once -----------------------------------------------------------


def _earned_last_month(club: Program) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from tessera.loyalty.models import WalletTransaction

    m = member(club, email="old@example.com")
    question_ = question(club, points=40)
    complete_activity(m.pk, question_.pk, answer="Paris")
    WalletTransaction.objects.filter(member=m).update(
        created_at=timezone.now() - timedelta(weeks=4)
    )


def test_a_closed_week_is_read_from_the_cache_the_second_time(club: Program) -> None:
    from tessera.portal.staff.metrics import wallet_weeks

    _earned_last_month(club)
    weeks = last_weeks()
    wallet_weeks(weeks)
    with CaptureQueriesContext(connection) as queries:
        wallet_weeks(weeks)
    # One sum, of the open week alone: no UNION of the eleven closed ones.
    assert [("UNION" in q["sql"]) for q in queries.captured_queries] == [False]


def test_a_closed_week_keeps_its_sum(club: Program) -> None:
    from tessera.portal.staff.metrics import wallet_weeks

    _earned_last_month(club)
    weeks = last_weeks()
    assert wallet_weeks(weeks)["points_earned"] == wallet_weeks(weeks)["points_earned"]
    assert 40 in wallet_weeks(weeks)["points_earned"]


def test_the_open_week_is_summed_every_time(club: Program) -> None:
    from tessera.portal.staff.metrics import wallet_weeks

    weeks = last_weeks()
    before = wallet_weeks(weeks)["points_earned"][-1]
    complete_activity(
        member(club, email="new@example.com").pk, question(club, points=7).pk, answer="Paris"
    )
    assert wallet_weeks(weeks)["points_earned"][-1] == before + 7
