"""Registering for an event, the ticket and its invoice, and checking it in at the door,
in a real browser."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.journey import Journey
from tests.e2e.portal_stack import Stack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def registered(chromium: Any, stack: Stack) -> dict[str, Any]:
    """Ada registers herself and a colleague for the summit, paying with points."""
    ada = Journey.start(chromium, stack, "register-two-with-points")
    ada.sign_in("ada@e2e.test")
    _, wallet = stack.api("GET", f"/members/{stack.seed['ada']}/wallet")
    before = wallet["balance"]
    ada.go(f"/events/{stack.seed['summit']}")
    ada.shot("event")
    ada.page.get_by_role("button", name="Add an attendee").click()
    second = ada.page.locator("fieldset.attendee").nth(1)
    second.get_by_role("textbox", name="First name").fill("Charles")
    second.get_by_role("textbox", name="Last name").fill("Babbage")
    second.get_by_role("textbox", name="Email").fill("charles@e2e.test")
    ada.page.get_by_label("Points", exact=False).check()
    ada.shot("filled")
    ada.page.get_by_role("button", name="Register and pay").click()
    ada.page.locator("figure.qr").nth(1).wait_for()
    ada.shot("confirmation")
    confirmation = ada.page.url
    _status, wallet = stack.api("GET", f"/members/{stack.seed['ada']}/wallet")
    out = {"journey": ada, "confirmation": confirmation, "spent": before - wallet["balance"]}
    yield out
    ada.close()
    assert ada.violations == []


def test_two_attendees_paid_with_points_take_the_points_of_two_tickets(
    registered: dict[str, Any],
) -> None:
    # A day pass costs 15.00 USD, 1,500 points at the club's 100 points per dollar.
    assert registered["spent"] == 2 * 1500


def test_the_confirmation_shows_a_ticket_per_attendee(registered: dict[str, Any]) -> None:
    ada: Journey = registered["journey"]
    ada.go(registered["confirmation"])
    assert ada.page.locator("figure.qr").count() == 2


def test_the_invoice_pdf_downloads(registered: dict[str, Any]) -> None:
    ada: Journey = registered["journey"]
    ada.go(registered["confirmation"])
    href = ada.page.locator("a[href$='.pdf']").first.get_attribute("href")
    response = ada.page.request.get(href)
    assert response.headers["content-type"] == "application/pdf"
    assert response.body()[:5] == b"%PDF-"


def _ticket_code(ada: Journey) -> str:
    ada.go("/tickets")
    ada.page.locator("a[href^='/tickets/att_']").first.click()
    ada.page.locator("[data-ticket-code]").wait_for()
    ada.shot("ticket")
    return str(ada.page.locator("[data-ticket-code]").inner_text()).strip()


def test_staff_check_a_typed_code_in_and_a_second_scan_says_already(
    registered: dict[str, Any], chromium: Any, stack: Stack
) -> None:
    code = _ticket_code(registered["journey"])
    staff = Journey.start(chromium, stack, "staff-check-in")
    staff.go("/staff/check-in")
    staff.page.get_by_role("textbox", name="Email or staff user name").fill("staff")
    staff.page.get_by_role("textbox", name="Password").fill("staff-pass-123")
    staff.page.get_by_role("button", name="Sign in").last.click()
    staff.page.get_by_role("heading", name="Check-in").wait_for()
    staff.page.get_by_role("textbox", name="Ticket code").fill(code)
    staff.page.get_by_role("button", name="Check in").click()
    staff.page.locator(".result.ok").wait_for()
    staff.shot("checked-in")
    staff.page.get_by_role("textbox", name="Ticket code").fill(code)
    staff.page.get_by_role("button", name="Check in").click()
    staff.page.get_by_text("Already checked in").wait_for()
    staff.shot("already")
    staff.close()
    assert staff.violations == []


def test_staff_dashboard_draws_its_charts(chromium: Any, stack: Stack) -> None:
    staff = Journey.start(chromium, stack, "staff-dashboard")
    staff.go("/staff/")
    staff.page.get_by_role("textbox", name="Email or staff user name").fill("staff")
    staff.page.get_by_role("textbox", name="Password").fill("staff-pass-123")
    staff.page.get_by_role("button", name="Sign in").last.click()
    staff.page.locator("img[src$='.svg']").first.wait_for()
    staff.shot("dashboard")
    # The charts below the fold load lazily: ask each for its picture, as scrolling would.
    widths = staff.page.locator("img[src$='.svg']").evaluate_all(
        "imgs => Promise.all(imgs.map(i => { i.loading = 'eager';"
        " return i.decode().then(() => i.naturalWidth, () => 0); }))"
    )
    staff.close()
    assert widths
    assert all(w > 0 for w in widths)


def test_member_a_opening_member_b_ticket_and_checkout_gets_not_found(
    registered: dict[str, Any], chromium: Any, stack: Stack
) -> None:
    bob = Journey.start(chromium, stack, "bob-isolation")
    bob.sign_in("bob@e2e.test")
    ada: Journey = registered["journey"]
    ada.go("/tickets")
    ticket = ada.page.locator("a[href^='/tickets/att_']").first.get_attribute("href")
    ada.go(registered["confirmation"])
    invoice = ada.page.locator("a[href$='.pdf']").first.get_attribute("href")
    statuses = {
        path: bob.go(path).status
        for path in (ticket, registered["confirmation"], invoice, f"{ticket}/cancel")
    }
    bob.close()
    assert statuses == dict.fromkeys(statuses, 404)
