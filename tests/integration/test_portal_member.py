"""The member's pages: home, wallet, earn, shop, credit, profile, and nobody else's records."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tessera.crm.models import Contact
from tessera.loyalty.activities import ActivitySpec, create_activity
from tessera.loyalty.adjustments import adjust_points
from tessera.loyalty.models import Completion, Member, Order, Program, WalletTransaction
from tessera.notifications.models import OutboundEmail
from tessera.portal.models import FormSubmission, VideoWatch
from tests.support.loyalty import balance, member, product, program, question
from tests.support.portal import signed_in
from tests.support.stripe import card

pytestmark = pytest.mark.django_db


@pytest.fixture
def club() -> Program:
    return program(low_balance_threshold=100)


@pytest.fixture
def ada(club: Program) -> Member:
    return member(club, email="ada@example.com", points=500)


@pytest.fixture
def browser(ada: Member) -> Client:
    return signed_in(ada.contact)


def _key(n: int = 1) -> str:
    return f"form-key-{n:012d}"


# --- home and wallet ----------------------------------------------------------------------


def test_home_shows_the_balance(browser: Client) -> None:
    assert "500 pts" in browser.get("/").content.decode()


def test_home_warns_below_the_threshold(browser: Client, ada: Member) -> None:
    adjust_points(ada.pk, points=-450, reason="spent")
    assert "Your balance is below" in browser.get("/").content.decode()


def test_home_lists_an_open_activity(browser: Client, club: Program) -> None:
    question(club, title="Capital of France")
    assert "Capital of France" in browser.get("/").content.decode()


def test_wallet_lists_movements_with_their_labels(browser: Client, ada: Member) -> None:
    adjust_points(ada.pk, points=-20, reason="correction")
    page = browser.get("/wallet").content.decode()
    assert "Adjustment" in page
    assert "correction" in page


def test_wallet_filters_by_type(browser: Client, club: Program, ada: Member) -> None:
    question(club, title="Q1")
    browser.post(f"/earn/{club.activities.get().pk}", {"answer": "Paris"})
    page = browser.get("/wallet", {"type": "points_earned"}).content.decode()
    assert "Points Earned" in page
    assert "opening balance" not in page


def test_wallet_refuses_a_date_range_backwards_beside_the_field(browser: Client) -> None:
    page = browser.get("/wallet", {"since": "2026-12-02", "until": "2026-01-01"}).content.decode()
    assert "must be on or after the start date" in page


def test_wallet_pages_older_movements(browser: Client, ada: Member) -> None:
    for i in range(30):
        adjust_points(ada.pk, points=1, reason=f"step {i}")
    first = browser.get("/wallet").content.decode()
    assert "step 29" in first
    assert "step 0" not in first
    assert "Older movements" in first


def test_wallet_next_page_as_an_htmx_partial(browser: Client, ada: Member) -> None:
    for i in range(30):
        adjust_points(ada.pk, points=1, reason=f"step {i}")
    first = browser.get("/wallet").content.decode()
    cursor = first.split("cursor=")[1].split('"')[0]
    rest = browser.get(
        "/wallet", {"cursor": cursor}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "step 0" in rest
    assert "<html" not in rest


def test_wallet_csv_has_every_movement(browser: Client, ada: Member) -> None:
    adjust_points(ada.pk, points=-20, reason="=HYPERLINK(1)")
    rows = list(csv.reader(io.StringIO(browser.get("/wallet.csv").content.decode())))
    assert len(rows) == 1 + WalletTransaction.objects.filter(member=ada).count()


def test_wallet_chart_is_an_svg(browser: Client) -> None:
    response = browser.get("/wallet/chart.svg")
    assert response["Content-Type"] == "image/svg+xml"
    assert b"<svg" in response.content


# --- earn ---------------------------------------------------------------------------------


def test_a_right_answer_earns_the_points(browser: Client, club: Program, ada: Member) -> None:
    q = question(club, points=10)
    page = browser.post(f"/earn/{q.pk}", {"answer": "Paris"}).content.decode()
    assert "Right!" in page
    assert balance(ada) == 510


def test_a_wrong_answer_says_so_and_earns_nothing(
    browser: Client, club: Program, ada: Member
) -> None:
    q = question(club, points=10)
    page = browser.post(f"/earn/{q.pk}", {"answer": "Lyon"}).content.decode()
    assert "not the right answer" in page
    assert balance(ada) == 500


def test_an_activity_counts_once(browser: Client, club: Program, ada: Member) -> None:
    q = question(club, points=10)
    browser.post(f"/earn/{q.pk}", {"answer": "Paris"})
    browser.post(f"/earn/{q.pk}", {"answer": "Paris"})
    assert balance(ada) == 510


def test_an_empty_answer_is_an_error_and_records_nothing(browser: Client, club: Program) -> None:
    q = question(club, points=10)
    response = browser.post(f"/earn/{q.pk}", {})
    assert response.status_code == 422
    assert not Completion.objects.exists()


def test_a_vote_shows_the_results(browser: Client, club: Program) -> None:
    vote = create_activity(ActivitySpec(**{"program_id": club.pk, "kind": "vote", "title": "Colour", "points": 5,
                            "question": "Best colour?", "options": ["Red", "Blue"]}))  # fmt: skip
    page = browser.post(f"/earn/{vote.pk}", {"answer": "Blue"}).content.decode()
    assert "Results" in page
    assert "your vote" in page


def test_an_htmx_answer_returns_only_the_activity(browser: Client, club: Program) -> None:
    q = question(club, points=10)
    page = browser.post(f"/earn/{q.pk}", {"answer": "Paris"}, headers={"HX-Request": "true"})
    assert b"<html" not in page.content


@pytest.fixture
def video(club: Program) -> Any:
    return create_activity(ActivitySpec(**{"program_id": club.pk, "kind": "video", "title": "Intro", "points": 30,
                            "video_url": "https://example.org/intro.webm", "min_watch_seconds": 20}))  # fmt: skip


def test_a_video_report_claiming_the_end_at_once_earns_nothing(
    browser: Client, video: Any, ada: Member
) -> None:
    browser.post(f"/earn/{video.pk}/progress", {"position": "0"})
    answer = browser.post(f"/earn/{video.pk}/progress", {"position": "600", "ended": "1"}).json()
    assert answer["completed"] is False
    assert balance(ada) == 500


def test_a_video_watched_for_the_minimum_time_earns_the_points(
    browser: Client, video: Any, ada: Member
) -> None:
    browser.post(f"/earn/{video.pk}/progress", {"position": "0"})
    watch = VideoWatch.objects.get()
    for position in (10, 21):
        VideoWatch.objects.filter(pk=watch.pk).update(
            last_report_at=timezone.now() - timedelta(seconds=11)
        )
        answer = browser.post(f"/earn/{video.pk}/progress", {"position": str(position)}).json()
    assert answer["completed"] is True
    assert balance(ada) == 530


def test_a_progress_report_that_is_not_a_number_is_refused(browser: Client, video: Any) -> None:
    assert browser.post(f"/earn/{video.pk}/progress", {"position": "soon"}).status_code == 422


# --- shop ---------------------------------------------------------------------------------


def _fill_cart(browser: Client, product_id: str, quantity: int = 1) -> None:
    browser.post("/shop/cart", {"product_id": product_id, "quantity": str(quantity)})


def test_the_shop_says_sold_out(browser: Client, club: Program) -> None:
    product(club, price=10, stock=0, name="Poster")
    assert "Sold out" in browser.get("/shop").content.decode()


def test_ordering_the_cart_pays_from_the_wallet(
    browser: Client, club: Program, ada: Member
) -> None:
    mug = product(club, price=200)
    _fill_cart(browser, mug.pk, 2)
    response = browser.post("/shop/cart", {"order": "1", "form_key": _key()})
    assert response.status_code == 302
    assert response["Location"].startswith("/shop/orders/")
    assert balance(ada) == 100


def test_a_double_clicked_order_orders_once(browser: Client, club: Program, ada: Member) -> None:
    mug = product(club, price=100)
    _fill_cart(browser, mug.pk)
    first = browser.post("/shop/cart", {"order": "1", "form_key": _key()})
    _fill_cart(browser, mug.pk)
    second = browser.post("/shop/cart", {"order": "1", "form_key": _key()})
    assert second["Location"] == first["Location"]
    assert Order.objects.filter(status="placed").count() == 1


def test_a_second_click_after_the_cart_emptied_lands_on_the_order(
    browser: Client, club: Program
) -> None:
    _fill_cart(browser, product(club, price=100).pk)
    first = browser.post("/shop/cart", {"order": "1", "form_key": _key()})
    second = browser.post("/shop/cart", {"order": "1", "form_key": _key()})
    assert second["Location"] == first["Location"]


def test_ordering_an_empty_cart_leaves_its_key_free(browser: Client) -> None:
    browser.post("/shop/cart", {"order": "1", "form_key": _key()})
    assert not FormSubmission.objects.exists()


def test_an_order_the_wallet_does_not_cover_shows_what_is_missing(
    browser: Client, club: Program, ada: Member
) -> None:
    mug = product(club, price=800)
    _fill_cart(browser, mug.pk)
    response = browser.post("/shop/cart", {"order": "1", "form_key": _key()})
    assert response.status_code == 402
    assert "300 pts short" in response.content.decode()
    assert "/credit" in response.content.decode()


def test_a_refused_order_emails_the_admin(browser: Client, club: Program) -> None:
    mug = product(club, price=800)
    _fill_cart(browser, mug.pk)
    browser.post("/shop/cart", {"order": "1", "form_key": _key()})
    assert OutboundEmail.objects.filter(template="order_refused_admin").count() == 1


def test_a_refused_order_charges_nothing_and_frees_its_key(
    browser: Client, club: Program, ada: Member
) -> None:
    mug = product(club, price=800)
    _fill_cart(browser, mug.pk)
    browser.post("/shop/cart", {"order": "1", "form_key": _key()})
    assert balance(ada) == 500
    assert not FormSubmission.objects.exists()


def test_another_members_order_is_not_found(browser: Client, club: Program) -> None:
    bob = member(club, email="bob@example.com", points=500)
    bob_browser = signed_in(bob.contact)
    mug = product(club, price=10)
    _fill_cart(bob_browser, mug.pk)
    where = bob_browser.post("/shop/cart", {"order": "1", "form_key": _key()})["Location"]
    assert browser.get(where).status_code == 404


# --- credit -------------------------------------------------------------------------------


def test_buying_credit_by_card_credits_the_points(
    stripe_env: Any, browser: Client, ada: Member
) -> None:
    pm = card(stripe_env)
    response = browser.post(
        "/credit", {"amount": "5.00", "payment_method_id": pm, "form_key": _key()}
    )
    receipt = browser.get(response["Location"]).content.decode()
    assert "500 pts credited" in receipt
    assert balance(ada) == 1000


def test_a_double_clicked_pay_charges_once(stripe_env: Any, browser: Client, ada: Member) -> None:
    pm = card(stripe_env)
    browser.post("/credit", {"amount": "5.00", "payment_method_id": pm, "form_key": _key()})
    browser.post("/credit", {"amount": "5.00", "payment_method_id": pm, "form_key": _key()})
    assert balance(ada) == 1000


def test_a_3ds_card_asks_for_confirmation_then_credits(
    stripe_env: Any, browser: Client, ada: Member
) -> None:
    pm = card(stripe_env, "4000002500003155")
    response = browser.post(
        "/credit", {"amount": "5.00", "payment_method_id": pm, "form_key": _key()}
    )
    assert response.status_code == 202
    assert b"data-client-secret" in response.content
    secret = response.content.decode().split('data-client-secret="')[1].split('"')[0]
    pi = secret.split("_secret_")[0]
    _authenticate(pi, secret)
    txn_path = response.content.decode().split('action="/credit/')[1].split('"')[0]
    browser.post(f"/credit/{txn_path}")
    assert balance(ada) == 1000


def _authenticate(pi: str, secret: str) -> None:
    """What Stripe.js does after the bank's challenge: tell Stripe it succeeded."""
    import json
    import urllib.request

    from django.conf import settings

    request = urllib.request.Request(  # noqa: S310 - the loopback emulator
        f"{settings.STRIPE_API_BASE}/v1/payment_intents/{pi}/_authenticate?success=true",
        data=json.dumps({"key": "pk_test_tessera", "client_secret": secret}).encode(),
        method="POST",
    )
    urllib.request.urlopen(request, timeout=10).read()  # noqa: S310


def test_a_declined_card_shows_why_and_credits_nothing(
    stripe_env: Any, browser: Client, ada: Member
) -> None:
    pm = card(stripe_env, "4000000000000002")
    response = browser.post(
        "/credit", {"amount": "5.00", "payment_method_id": pm, "form_key": _key()}
    )
    assert response.status_code == 402
    assert balance(ada) == 500


def test_credit_without_a_card_is_an_error_beside_the_field(browser: Client, ada: Member) -> None:
    response = browser.post(
        "/credit", {"amount": "5.00", "payment_method_id": "", "form_key": _key()}
    )
    assert response.status_code == 422
    assert b"Enter your card details" in response.content


def test_an_amount_finer_than_the_currency_is_refused_beside_the_field(stripe_env: Any) -> None:
    yen = member(
        program(name="Yen club", currency="JPY", points_per_unit=1), email="jp@example.com"
    )
    response = signed_in(yen.contact).post(
        "/credit", {"amount": "500.50", "payment_method_id": card(stripe_env), "form_key": _key()}
    )
    assert response.status_code == 422
    assert b"at most 0 decimals" in response.content


def test_another_members_receipt_is_not_found(
    stripe_env: Any, browser: Client, club: Program
) -> None:
    bob = member(club, email="bob@example.com")
    where = signed_in(bob.contact).post(
        "/credit", {"amount": "5.00", "payment_method_id": card(stripe_env), "form_key": _key()}
    )["Location"]
    assert browser.get(where).status_code == 404


# --- profile ------------------------------------------------------------------------------


def _details(**kw: str) -> dict[str, str]:
    return {"first_name": "Ada", "last_name": "Member", "email": "ada@example.com",
            "reminders": "on", "locale": "en", **kw}  # fmt: skip


def test_a_profile_edit_saves_the_contact(browser: Client, ada: Member) -> None:
    browser.post("/profile", _details(city="London"))
    assert Contact.objects.get(pk=ada.contact_id).city == "London"


def test_a_profile_edit_without_a_last_name_changes_nothing(browser: Client, ada: Member) -> None:
    response = browser.post("/profile", _details(last_name="", city="Paris"))
    assert response.status_code == 422
    assert Contact.objects.get(pk=ada.contact_id).city == ""


def test_opting_out_of_reminders_stops_the_low_balance_email(browser: Client, ada: Member) -> None:
    browser.post("/profile", {k: v for k, v in _details().items() if k != "reminders"})
    adjust_points(ada.pk, points=-450, reason="spent")
    assert not OutboundEmail.objects.filter(template="low_balance_member").exists()


def test_choosing_a_language_formats_numbers_in_it(browser: Client, ada: Member) -> None:
    adjust_points(ada.pk, points=1000, reason="bonus")
    browser.post("/profile", _details(locale="de"))
    assert "1.500 pts" in browser.get("/").content.decode()
