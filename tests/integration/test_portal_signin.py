"""Signing in to the portal: emailed single-use links, passwords, rate limits."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.test import Client

from tessera.notifications.models import OutboundEmail
from tessera.notifications.services import deliver_email
from tessera.portal.models import PortalAccount
from tessera.portal.signin import TOKEN_SLOT
from tests.support.loyalty import member, program
from tests.support.portal import SIGNIN_LINK, signin_link

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada() -> object:
    return member(program(), email="ada@example.com", points=500)


def _token(path: str) -> str:
    return parse_qs(urlsplit(path).query)["token"][0]


def test_a_member_page_sends_a_signed_out_visitor_to_signin_and_back() -> None:
    response = Client().get("/wallet")
    assert response.status_code == 302
    assert response["Location"] == "/signin?next=/wallet"


def test_asking_for_a_link_emails_one_to_the_contact(ada: object) -> None:
    Client().post("/signin", {"mode": "link", "email": "ADA@example.com", "next": "/wallet"})
    assert OutboundEmail.objects.filter(template="signin_link", to="ada@example.com").count() == 1


def test_asking_for_an_unknown_address_answers_the_same_and_sends_nothing(ada: object) -> None:
    known = Client().post("/signin", {"mode": "link", "email": "ada@example.com"})
    unknown = Client().post("/signin", {"mode": "link", "email": "nobody@example.com"})
    assert known.content.replace(b"ada@example.com", b"X") == unknown.content.replace(
        b"nobody@example.com", b"X"
    )
    assert not OutboundEmail.objects.filter(to="nobody@example.com").exists()


def _queued_link_email() -> OutboundEmail:
    Client().post("/signin", {"mode": "link", "email": "ada@example.com", "next": "/wallet"})
    return OutboundEmail.objects.get(template="signin_link", to="ada@example.com")


def test_the_queued_email_holds_a_slot_not_a_token(ada: object) -> None:
    assert TOKEN_SLOT in _queued_link_email().text_body


def test_the_stored_email_keeps_its_slot_after_sending(ada: object) -> None:
    email = _queued_link_email()
    _token(signin_link("ada@example.com"))
    email.refresh_from_db()
    assert TOKEN_SLOT in email.text_body


def test_the_sent_link_carries_a_token_minted_at_sending(ada: object) -> None:
    _queued_link_email()
    assert _token(signin_link("ada@example.com")) != TOKEN_SLOT


def test_the_sent_html_carries_the_same_token_as_the_text(ada: object) -> None:
    email = _queued_link_email()
    deliver_email(email.pk)
    sent = mail.outbox[-1]
    token = _token(SIGNIN_LINK.search(str(sent.body)).group(1))
    assert token in str(sent.alternatives[0][0])


def test_a_sign_in_email_whose_contact_is_gone_is_a_failed_attempt(ada: object) -> None:
    email = _queued_link_email()
    OutboundEmail.objects.filter(pk=email.pk).update(contact=None)
    deliver_email(email.pk)
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.RETRYING


def test_following_the_link_signs_in_and_goes_to_next(ada: object) -> None:
    client = Client()
    client.post("/signin", {"mode": "link", "email": "ada@example.com", "next": "/wallet"})
    path = signin_link("ada@example.com")
    assert client.get(path).status_code == 200  # a button: a mail scanner spends nothing
    response = client.post("/signin/link", {"token": _token(path), "next": "/wallet"})
    assert response["Location"] == "/wallet"
    assert client.get("/wallet").status_code == 200


def test_opening_the_link_without_pressing_the_button_does_not_spend_it(ada: object) -> None:
    client = Client()
    client.post("/signin", {"mode": "link", "email": "ada@example.com"})
    path = signin_link("ada@example.com")
    client.get(path)
    client.get(path)
    assert client.post("/signin/link", {"token": _token(path)}).status_code == 302


def test_a_used_link_says_so_and_offers_a_new_one(ada: object) -> None:
    Client().post("/signin", {"mode": "link", "email": "ada@example.com"})
    token = _token(signin_link("ada@example.com"))
    Client().post("/signin/link", {"token": token})
    again = Client().post("/signin/link", {"token": token})
    assert again.status_code == 400
    assert b"expired or was already used" in again.content
    assert b'name="email"' in again.content


def test_an_expired_link_is_refused(ada: object, settings: object) -> None:
    Client().post("/signin", {"mode": "link", "email": "ada@example.com"})
    token = _token(signin_link("ada@example.com"))
    settings.SESAME_MAX_AGE = -1  # type: ignore[attr-defined]
    assert Client().post("/signin/link", {"token": token}).status_code == 400


def test_the_emailed_link_carries_next_unescaped(ada: object) -> None:
    Client().post("/signin", {"mode": "link", "email": "ada@example.com", "next": "/wallet"})
    assert parse_qs(urlsplit(signin_link("ada@example.com")).query)["next"] == ["/wallet"]


def test_next_never_leaves_the_site(ada: object) -> None:
    client = Client()
    client.post("/signin", {"mode": "link", "email": "ada@example.com"})
    token = _token(signin_link("ada@example.com"))
    response = client.post("/signin/link", {"token": token, "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_an_invalid_address_gets_its_error_beside_the_field() -> None:
    response = Client().post("/signin", {"mode": "link", "email": "not-an-address"})
    assert response.status_code == 422
    assert b"Enter a valid email address" in response.content


def test_sign_in_requests_per_address_are_rate_limited(ada: object, settings: object) -> None:
    settings.TESSERA_SIGNIN_RATE_PER_EMAIL = "2/h"  # type: ignore[attr-defined]
    codes = [
        Client(REMOTE_ADDR=f"10.0.0.{i}")
        .post("/signin", {"mode": "link", "email": "ada@example.com"})
        .status_code
        for i in range(4)
    ]
    assert codes == [200, 200, 429, 429]
    assert OutboundEmail.objects.filter(template="signin_link").count() == 2


def test_sign_in_requests_per_client_are_rate_limited(settings: object) -> None:
    settings.TESSERA_SIGNIN_RATE_PER_CLIENT = "3/h"  # type: ignore[attr-defined]
    client = Client(REMOTE_ADDR="10.9.9.9")
    codes = [
        client.post("/signin", {"mode": "link", "email": f"p{i}@example.com"}).status_code
        for i in range(5)
    ]
    assert codes[-1] == 429


def test_a_member_who_set_a_password_signs_in_with_it(ada: object) -> None:
    client = Client()
    client.post("/signin", {"mode": "link", "email": "ada@example.com"})
    client.post("/signin/link", {"token": _token(signin_link("ada@example.com"))})
    client.post(
        "/profile/password",
        {"new_password1": "correct horse battery", "new_password2": "correct horse battery"},
    )
    fresh = Client()
    response = fresh.post(
        "/signin",
        {"mode": "password", "login": "ada@example.com", "password": "correct horse battery"},
    )
    assert response.status_code == 302


def test_a_wrong_password_is_refused_without_saying_which_part(ada: object) -> None:
    PortalAccount.objects.all().delete()
    response = Client().post(
        "/signin", {"mode": "password", "login": "ada@example.com", "password": "nope"}
    )
    assert response.status_code == 422
    assert b"do not match" in response.content
