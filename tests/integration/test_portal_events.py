"""The member portal's event and ticket pages: listing, registering (points, free, card,
3-D Secure), refusals beside the fields, the waitlist, tickets, cancelling, and that a
member sees only their own records."""

from __future__ import annotations

import re
from typing import Any

import pytest
import stripe
from django.test import Client

from tessera.billing.models import Invoice
from tessera.events.models import Attendee, Checkout, Event, EventItem, WaitlistEntry
from tessera.loyalty.models import Member
from tessera.portal.identity import user_for_contact
from tests.support.events import event, item, promo, question
from tests.support.loyalty import balance, member, program
from tests.support.stripe import authenticate, card

pytestmark = pytest.mark.django_db


def signed_in(m: Member) -> Client:
    client = Client()
    client.force_login(user_for_contact(m.contact))  # type: ignore[arg-type]
    return client


@pytest.fixture
def club() -> Any:
    return program(points_per_unit=100, currency="EUR", low_balance_threshold=0)


@pytest.fixture
def ada(club: Any) -> Member:
    return member(club, "ada@example.com", points=50_000)


@pytest.fixture
def summit(club: Any) -> Event:
    return event(name="Summit", currency="EUR", program_id=club.pk, capacity=100)


def form_key(page: Any) -> str:
    found = re.search(r'name="form_key" value="([^"]+)"', page.content.decode())
    assert found, "the page draws a form key"
    return found[1]


def registration(ticket: EventItem, *people: dict[str, str], **extra: str) -> dict[str, Any]:
    data: dict[str, Any] = {"attendees": str(len(people)), "form_key": "k" * 24}
    for a, person in enumerate(people):
        data.update({f"a{a}_{k}": v for k, v in person.items()})
        data[f"a{a}_ticket"] = ticket.pk
    return {**data, **extra}


ADA = {"first_name": "Ada", "last_name": "Member", "email": "ada@example.com"}
BOB = {"first_name": "Bob", "last_name": "Guest", "email": "bob@example.org"}


def registered(ev: Event) -> int:
    return Attendee.objects.filter(event=ev, status="registered").count()


# --- the list ------------------------------------------------------------------------------


def test_the_list_shows_places_left_and_sold_out(ada: Member, summit: Event) -> None:
    item(summit, name="Standard", capacity=7)
    item(summit, name="VIP", capacity=0)
    text = signed_in(ada).get("/events").content.decode()
    assert "Summit" in text
    assert "7 left" in text
    assert "Sold out" in text


def test_signed_out_visitors_are_sent_to_sign_in(summit: Event) -> None:
    response = Client().get(f"/events/{summit.pk}")
    assert response.status_code == 302
    assert response["Location"].startswith("/signin?next=")


# --- registering ---------------------------------------------------------------------------


def test_the_form_prefills_attendee_one_from_the_viewer(ada: Member, summit: Event) -> None:
    item(summit)
    text = signed_in(ada).get(f"/events/{summit.pk}?attendees=2").content.decode()
    assert 'value="ada@example.com"' in text
    assert "Attendee 2" in text


def test_two_attendees_paying_with_points(ada: Member, summit: Event) -> None:
    ticket = item(summit, price=5000)  # 50.00 EUR at 100 points a euro: 5,000 points each
    data = registration(ticket, ADA, BOB, payment="wallet")
    response = signed_in(ada).post(f"/events/{summit.pk}", data)
    assert response.status_code == 302, response.content.decode()
    assert (registered(summit), balance(ada)) == (2, 50_000 - 10_000)


def test_a_free_registration_needs_no_payment(ada: Member) -> None:
    ev = event(name="Meetup")
    ticket = item(ev, price=0)
    response = signed_in(ada).post(f"/events/{ev.pk}", registration(ticket, ADA))
    checkout = Checkout.objects.get(event=ev)
    assert response["Location"] == f"/events/checkouts/{checkout.pk}"
    assert (checkout.status, registered(ev)) == ("free", 1)


def test_a_required_question_left_empty_is_shown_beside_it(ada: Member, summit: Event) -> None:
    ticket = item(summit, price=0)
    diet = question(summit, label="Dietary needs", type="select", required=True,
                    options=("None", "Vegan"))  # fmt: skip
    response = signed_in(ada).post(f"/events/{summit.pk}", registration(ticket, ADA))
    text = response.content.decode()
    assert response.status_code == 422
    assert f'id="id_a0_q_{diet.pk}_errors"' in text
    assert "needs an answer" in text
    assert 'value="ada@example.com"' in text  # what was typed is kept
    assert not Checkout.objects.exists()
    assert not Attendee.objects.exists()


def test_an_answer_of_the_wrong_type_is_refused(ada: Member, summit: Event) -> None:
    ticket = item(summit, price=0)
    phone = question(summit, label="Mobile", type="phone")
    data = registration(ticket, ADA, **{f"a0_q_{phone.pk}": "not a phone"})
    response = signed_in(ada).post(f"/events/{summit.pk}", data)
    assert response.status_code == 422
    assert f"id_a0_q_{phone.pk}_errors" in response.content.decode()


def test_a_question_for_other_tickets_is_not_asked(ada: Member, summit: Event) -> None:
    standard = item(summit, price=0, name="Standard")
    vip = item(summit, price=0, name="VIP")
    question(summit, label="Guest of honour?", type="text", required=True, item_ids=(vip.pk,))
    response = signed_in(ada).post(f"/events/{summit.pk}", registration(standard, ADA))
    assert response.status_code == 302
    assert registered(summit) == 1


def test_too_few_points_is_said_and_registers_nobody(club: Any, summit: Event) -> None:
    poor = member(club, "poor@example.com", points=100)
    ticket = item(summit, price=5000)
    person = {"first_name": "Poor", "last_name": "Member", "email": "poor@example.com"}
    response = signed_in(poor).post(
        f"/events/{summit.pk}", registration(ticket, person, payment="wallet")
    )
    assert response.status_code == 402
    assert "The wallet holds" in response.content.decode()
    assert (registered(summit), balance(poor)) == (0, 100)


def test_the_services_paths_map_back_to_form_fields(ada: Member, summit: Event) -> None:
    """``attendees.1.answers.0.value`` names the first answer sent for attendee 2."""
    from tessera.events.catalogue import catalogue
    from tessera.events.requests import PersonIn
    from tessera.portal.event_forms import RegistrationForm

    ticket = item(summit, price=0)
    extra = item(summit, price=0, kind="addon", name="Lunch")
    skipped = question(summit, label="Skipped", type="text")
    asked = question(summit, label="Asked", type="text")
    data = registration(ticket, ADA, BOB, **{f"a1_q_{asked.pk}": "yes", f"a1_item_{extra.pk}": "1"})
    form = RegistrationForm(data, listed=catalogue(summit), count=2, payments=[])
    assert form.is_valid(), form.errors
    form.checkout_in(summit.pk, PersonIn("Ada", "Member", "ada@example.com"), None)
    assert form.field_for("attendees.1.answers.0.value") == f"a1_q_{asked.pk}"
    assert form.field_for(f"attendees.0.answers.{skipped.pk}") == f"a0_q_{skipped.pk}"
    assert form.field_for("attendees.1.items.1.quantity") == f"a1_item_{extra.pk}"
    assert form.field_for("attendees.0.items") == "a0_ticket"


def test_a_promo_code_applies(ada: Member, summit: Event) -> None:
    ticket = item(summit, price=5000)
    promo(summit, code="HALF", percent_off=50)
    data = registration(ticket, ADA, payment="wallet", promo_code="half")
    signed_in(ada).post(f"/events/{summit.pk}", data)
    checkout = Checkout.objects.get(event=summit)
    assert (checkout.total, checkout.points, balance(ada)) == (2500, 2500, 47_500)


def test_an_unknown_promo_code_is_shown_beside_its_field(ada: Member, summit: Event) -> None:
    ticket = item(summit, price=5000)
    data = registration(ticket, ADA, payment="wallet", promo_code="NOPE")
    response = signed_in(ada).post(f"/events/{summit.pk}", data)
    assert response.status_code == 422
    assert 'id="id_promo_code_errors"' in response.content.decode()
    assert not Checkout.objects.exists()


def test_a_second_submission_of_the_same_form_makes_one_checkout(
    ada: Member, summit: Event
) -> None:
    ticket = item(summit, price=5000)
    client = signed_in(ada)
    data = registration(ticket, ADA, payment="wallet")
    data["form_key"] = form_key(client.get(f"/events/{summit.pk}"))
    first = client.post(f"/events/{summit.pk}", data)
    second = client.post(f"/events/{summit.pk}", data)
    assert first["Location"] == second["Location"]
    assert (Checkout.objects.count(), balance(ada)) == (1, 45_000)


def test_adding_an_attendee_keeps_what_was_typed(ada: Member, summit: Event) -> None:
    ticket = item(summit)
    data = registration(ticket, {**ADA, "first_name": "Adelaide"}, change="add")
    response = signed_in(ada).post(f"/events/{summit.pk}", data)
    text = response.content.decode()
    assert "Attendee 2" in text
    assert 'value="Adelaide"' in text
    assert '<ul class="errorlist"' not in text
    assert not Checkout.objects.exists()


def test_paying_by_card(ada: Member, summit: Event, stripe_env: stripe.StripeClient) -> None:
    ticket = item(summit, price=5000)
    data = registration(ticket, ADA, payment="card", payment_method_id=card(stripe_env))
    response = signed_in(ada).post(f"/events/{summit.pk}", data)
    checkout = Checkout.objects.get(event=summit)
    assert response["Location"] == f"/events/checkouts/{checkout.pk}"
    assert (checkout.status, checkout.payment, balance(ada)) == ("paid", "card", 50_000)


def test_a_declined_card_is_shown_and_a_new_form_key_drawn(
    ada: Member, summit: Event, stripe_env: stripe.StripeClient
) -> None:
    ticket = item(summit, price=5000)
    data = registration(ticket, ADA, payment="card")
    data["payment_method_id"] = card(stripe_env, "4000000000000002")
    response = signed_in(ada).post(f"/events/{summit.pk}", data)
    assert response.status_code == 402
    assert registered(summit) == 0
    assert form_key(response) != data["form_key"]


def test_three_d_secure_is_finished_by_the_confirm_form(
    ada: Member, summit: Event, stripe_env: stripe.StripeClient
) -> None:
    ticket = item(summit, price=5000)
    client = signed_in(ada)
    data = registration(ticket, ADA, payment="card")
    data["payment_method_id"] = card(stripe_env, "4000002760003184")
    url = client.post(f"/events/{summit.pk}", data)["Location"]
    page = client.get(url).content.decode()
    secret = re.search(r'data-client-secret="([^"]+)"', page)
    assert secret, page
    checkout = Checkout.objects.select_related("transaction").get(event=summit)
    assert checkout.transaction is not None
    authenticate(stripe_env, checkout.transaction, secret[1])
    assert client.post(f"{url}/confirm")["Location"] == url
    checkout.refresh_from_db()
    assert (checkout.status, registered(summit)) == ("paid", 1)


# --- sold out and the waitlist -------------------------------------------------------------


def test_sold_out_offers_the_waitlist_and_joining_works(ada: Member, summit: Event) -> None:
    ticket = item(summit, capacity=0)
    client = signed_in(ada)
    page = client.get(f"/events/{summit.pk}").content.decode()
    assert f'action="/events/{summit.pk}/waitlist"' in page
    key = re.findall(r'name="form_key" value="([^"]+)"', page)[0]
    response = client.post(f"/events/{summit.pk}/waitlist", {"form_key": key, "item_id": ticket.pk})
    assert response.status_code == 302
    entry = WaitlistEntry.objects.get(item=ticket)
    assert (entry.contact_id, entry.status) == (ada.contact_id, "waiting")
    assert "You are on the waitlist" in client.get(f"/events/{summit.pk}").content.decode()


def test_a_waitlist_token_prefills_and_redeems_the_offer(ada: Member, summit: Event) -> None:
    ticket = item(summit, price=0, capacity=0)
    client = signed_in(ada)
    client.post(f"/events/{summit.pk}/waitlist", {"form_key": "w" * 24, "item_id": ticket.pk})
    token = offer_place(ticket)
    page = client.get(f"/events/{summit.pk}?waitlist_token={token}").content.decode()
    assert f'value="{token}"' in page
    assert "is held for you" in page
    client.post(f"/events/{summit.pk}", registration(ticket, ADA, waitlist_token=token))
    assert WaitlistEntry.objects.get(item=ticket).status == "redeemed"
    assert registered(summit) == 1


def offer_place(ticket: EventItem) -> str:
    """Raise the capacity and offer the freed place, catching the token the email gets."""
    from unittest import mock

    from tessera.events import waitlist

    EventItem.objects.filter(pk=ticket.pk).update(capacity=1)
    with mock.patch.object(waitlist, "queue_email") as sent:
        assert waitlist.offer_places(ticket.event_id) == 1
    return str(sent.call_args.kwargs["context"]["token"])


# --- after checking out --------------------------------------------------------------------


@pytest.fixture
def bought(ada: Member, summit: Event) -> Checkout:
    ticket = item(summit, price=5000)
    signed_in(ada).post(f"/events/{summit.pk}", registration(ticket, ADA, payment="wallet"))
    return Checkout.objects.select_related("invoice").get(event=summit)


def test_the_confirmation_shows_the_qr_and_the_downloads(ada: Member, bought: Checkout) -> None:
    text = signed_in(ada).get(f"/events/checkouts/{bought.pk}").content.decode()
    assert '<svg viewBox="0 0' in text
    assert "style=" not in text
    assert f'href="/events/{bought.event_id}.ics"' in text
    assert f'href="/invoices/{bought.invoice_id}.pdf"' in text


def test_the_downloads_are_a_calendar_and_a_pdf(ada: Member, bought: Checkout) -> None:
    client = signed_in(ada)
    ics = client.get(f"/events/{bought.event_id}.ics")
    pdf = client.get(f"/invoices/{bought.invoice_id}.pdf")
    assert ics["Content-Type"] == "text/calendar"
    assert b"BEGIN:VEVENT" in ics.content
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")


def test_tickets_lists_own_tickets_only(ada: Member, bought: Checkout, club: Any) -> None:
    other = member(club, "eve@example.com", points=50_000)
    ticket = EventItem.objects.get(event=bought.event)
    eve = {"first_name": "Eve", "last_name": "Other", "email": "eve@example.com"}
    signed_in(other).post(f"/events/{bought.event_id}", registration(ticket, eve, payment="wallet"))
    text = signed_in(ada).get("/tickets").content.decode()
    mine = Attendee.objects.get(checkout=bought)
    theirs = Attendee.objects.exclude(checkout=bought).get()
    assert f"/tickets/{mine.pk}" in text
    assert f"/tickets/{theirs.pk}" not in text
    assert f"/invoices/{bought.invoice_id}.pdf" in text


@pytest.mark.parametrize(
    "url",
    [
        "/events/checkouts/{checkout}",
        "/tickets/{attendee}",
        "/tickets/{attendee}/cancel",
        "/invoices/{invoice}.pdf",
    ],
)
def test_another_members_records_answer_404(bought: Checkout, club: Any, url: str) -> None:
    other = signed_in(member(club, "eve@example.com"))
    attendee = Attendee.objects.get(checkout=bought)
    ids = {"checkout": bought.pk, "attendee": attendee.pk, "invoice": bought.invoice_id}
    assert other.get(url.format(**ids)).status_code == 404


def test_another_members_credit_note_answers_404(ada: Member, bought: Checkout, club: Any) -> None:
    client = signed_in(ada)
    attendee = Attendee.objects.get(checkout=bought)
    client.post(f"/tickets/{attendee.pk}/cancel", {"form_key": "c" * 24})
    note = Invoice.objects.get(kind="credit_note")
    other = signed_in(member(club, "eve@example.com"))
    assert client.get(f"/invoices/{note.pk}.pdf").status_code == 200
    assert other.get(f"/invoices/{note.pk}.pdf").status_code == 404


def test_cancelling_once_returns_the_points(ada: Member, bought: Checkout) -> None:
    client = signed_in(ada)
    attendee = Attendee.objects.get(checkout=bought)
    page = client.get(f"/tickets/{attendee.pk}/cancel").content.decode()
    assert "5,000 pts back to your wallet" in page
    data = {"form_key": form_key(page_response := client.get(f"/tickets/{attendee.pk}/cancel"))}
    assert page_response.status_code == 200
    first = client.post(f"/tickets/{attendee.pk}/cancel", data)
    second = client.post(f"/tickets/{attendee.pk}/cancel", data)
    attendee.refresh_from_db()
    assert first["Location"] == second["Location"] == "/tickets"
    assert (attendee.status, balance(ada)) == ("cancelled", 50_000)
    assert Invoice.objects.filter(kind="credit_note").count() == 1
