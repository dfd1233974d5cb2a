"""Rate limits: failed API keys per client, checkouts per API key, member and client (API
and portal), and password sign-ins. Each test sets the rates it exercises (the test
settings' defaults are high so the rest of the suite never meets them)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from tessera.api import auth
from tessera.core.apikeys import create_api_key
from tessera.events.models import Checkout, Event, EventItem
from tessera.loyalty.models import Member
from tessera.portal.identity import user_for_contact
from tests.support.api import Api, assert_problem
from tests.support.events import attendee, body, event, item
from tests.support.loyalty import member, program

pytestmark = pytest.mark.django_db

BAD_KEY = {"Authorization": "Bearer tsk_not-a-key"}


def api_from(ip: str, raw_key: str | None = None) -> Api:
    """An API client whose requests come from ``ip``."""
    client = Api(raw_key)
    client.client = Client(REMOTE_ADDR=ip)
    return client


def new_key() -> str:
    return create_api_key("limits", ("read", "write"))[1]


def fail(client: Api, times: int) -> list[int]:
    return [client.get("/contacts", headers=BAD_KEY).status_code for _ in range(times)]


@pytest.fixture
def three_failures(settings: Any) -> None:
    settings.TESSERA_API_AUTH_FAILURE_RATE = "3/m"


# --- failed API keys ------------------------------------------------------------------------


@pytest.mark.usefixtures("three_failures")
class TestFailedApiKeys:
    def test_behind_a_trusted_proxy_each_client_has_its_own_allowance(self, settings: Any) -> None:
        settings.TESSERA_TRUSTED_PROXIES = 1
        first = api_from("10.9.0.1")  # the proxy's address, the same for both clients
        first.client.defaults["HTTP_X_FORWARDED_FOR"] = "203.0.113.1"
        fail(first, 4)
        second = api_from("10.9.0.1")
        second.client.defaults["HTTP_X_FORWARDED_FOR"] = "203.0.113.2"
        assert fail(second, 1) == [401]

    def test_bad_keys_below_the_allowance_are_401(self) -> None:
        assert fail(api_from("10.1.0.1"), 3) == [401, 401, 401]

    def test_past_the_allowance_the_answer_is_429_rate_limited(self) -> None:
        client = api_from("10.1.0.2")
        fail(client, 3)
        assert_problem(client.get("/contacts", headers=BAD_KEY), 429, "rate_limited")

    def test_the_429_says_when_to_retry(self) -> None:
        client = api_from("10.1.0.3")
        fail(client, 3)
        assert int(client.get("/contacts", headers=BAD_KEY)["Retry-After"]) >= 1

    def test_the_problem_body_carries_the_wait_too(self) -> None:
        client = api_from("10.1.0.4")
        fail(client, 3)
        response = client.get("/contacts", headers=BAD_KEY)
        assert json.loads(response.content)["retry_after"] == int(response["Retry-After"])

    def test_a_locked_out_client_is_refused_even_with_a_valid_key(self) -> None:
        client = api_from("10.1.0.5", new_key())
        fail(client, 3)
        assert client.get("/contacts").status_code == 429

    def test_a_locked_out_client_has_no_key_looked_up(self, monkeypatch: Any) -> None:
        client = api_from("10.1.0.6", new_key())
        fail(client, 3)
        looked_up: list[str] = []
        monkeypatch.setattr(auth, "authenticate_key", lambda raw: looked_up.append(raw))
        client.get("/contacts")
        assert looked_up == []

    def test_a_locked_out_write_with_an_idempotency_key_is_429_too(self) -> None:
        client = api_from("10.1.0.7", new_key())
        fail(client, 3)
        response = client.post(
            "/contacts", {"first_name": "Ada"}, headers={"Idempotency-Key": "locked-out-1"}
        )
        assert_problem(response, 429, "rate_limited")

    def test_successful_requests_are_not_counted(self) -> None:
        client = api_from("10.1.0.8", new_key())
        for _ in range(5):
            client.get("/contacts")
        assert fail(client, 3) == [401, 401, 401]

    def test_requests_without_a_key_are_not_counted(self) -> None:
        client = api_from("10.1.0.9")
        for _ in range(5):
            client.get("/contacts")
        assert fail(client, 3) == [401, 401, 401]

    def test_another_client_is_not_locked_out(self) -> None:
        fail(api_from("10.1.1.1"), 4)
        assert api_from("10.1.1.2", new_key()).get("/contacts").status_code == 200


# --- checkouts over the API -----------------------------------------------------------------


@pytest.fixture
def free_ticket() -> tuple[Event, EventItem]:
    ev = event(currency="EUR")
    return ev, item(ev, price=0)


def checkout(client: Api, sale: tuple[Event, EventItem], n: int, **headers: str) -> Any:
    ev, ticket = sale
    return client.post(f"/events/{ev.pk}/checkout", body(attendee(ticket, n)), headers=headers)


class TestApiCheckouts:
    def test_checkouts_within_the_rate_pass(
        self, settings: Any, free_ticket: tuple[Event, EventItem]
    ) -> None:
        settings.TESSERA_CHECKOUT_RATE = "2/m"
        client = api_from("10.2.0.1", new_key())
        assert [checkout(client, free_ticket, n).status_code for n in range(2)] == [201, 201]

    def test_past_the_rate_per_key_the_answer_is_429_rate_limited(
        self, settings: Any, free_ticket: tuple[Event, EventItem]
    ) -> None:
        settings.TESSERA_CHECKOUT_RATE = "2/m"
        client = api_from("10.2.0.2", new_key())
        for n in range(2):
            checkout(client, free_ticket, n)
        assert_problem(checkout(client, free_ticket, 2), 429, "rate_limited")

    def test_the_429_says_when_to_retry(
        self, settings: Any, free_ticket: tuple[Event, EventItem]
    ) -> None:
        settings.TESSERA_CHECKOUT_RATE = "1/m"
        client = api_from("10.2.0.3", new_key())
        checkout(client, free_ticket, 0)
        assert int(checkout(client, free_ticket, 1)["Retry-After"]) >= 1

    def test_a_refused_checkout_registers_nobody(
        self, settings: Any, free_ticket: tuple[Event, EventItem]
    ) -> None:
        settings.TESSERA_CHECKOUT_RATE = "1/m"
        client = api_from("10.2.0.4", new_key())
        checkout(client, free_ticket, 0)
        checkout(client, free_ticket, 1)
        assert Checkout.objects.filter(event=free_ticket[0]).count() == 1

    def test_another_key_has_its_own_allowance(
        self, settings: Any, free_ticket: tuple[Event, EventItem]
    ) -> None:
        settings.TESSERA_CHECKOUT_RATE = "1/m"
        checkout(api_from("10.2.0.5", new_key()), free_ticket, 0)
        assert checkout(api_from("10.2.0.5", new_key()), free_ticket, 1).status_code == 201

    def test_past_the_rate_per_client_any_key_is_refused(
        self, settings: Any, free_ticket: tuple[Event, EventItem]
    ) -> None:
        settings.TESSERA_CHECKOUT_RATE_PER_CLIENT = "2/m"
        for n in range(2):
            checkout(api_from("10.2.0.6", new_key()), free_ticket, n)
        assert checkout(api_from("10.2.0.6", new_key()), free_ticket, 9).status_code == 429

    def test_an_idempotent_replay_is_not_counted(
        self, settings: Any, free_ticket: tuple[Event, EventItem]
    ) -> None:
        settings.TESSERA_CHECKOUT_RATE = "1/m"
        client = api_from("10.2.0.7", new_key())
        codes = [
            checkout(client, free_ticket, 0, **{"Idempotency-Key": "same"}).status_code
            for _ in range(3)
        ]
        assert codes == [201, 201, 201]

    def test_the_openapi_document_lists_429_for_checkout(self, api: Api) -> None:
        schema = json.loads(api.get("/openapi.json").content)
        responses = schema["paths"]["/api/v1/events/{event_id}/checkout"]["post"]["responses"]
        assert "application/problem+json" in responses["429"]["content"]


# --- checkouts in the portal ----------------------------------------------------------------


@pytest.fixture
def ada() -> Member:
    return member(program(currency="EUR"), "ada@example.com")


def portal_client(m: Member, ip: str) -> Client:
    client = Client(REMOTE_ADDR=ip)
    client.force_login(user_for_contact(m.contact))  # type: ignore[arg-type]
    return client


def register(client: Client, sale: tuple[Event, EventItem], n: int) -> Any:
    ev, ticket = sale
    data = {
        "attendees": "1",
        "form_key": f"{n:024d}",
        "a0_first_name": "Ada",
        "a0_last_name": "Member",
        "a0_email": f"ada{n}@example.com",
        "a0_ticket": ticket.pk,
    }
    return client.post(f"/events/{ev.pk}", data)


class TestPortalCheckouts:
    def test_checkouts_within_the_rate_go_through(
        self, settings: Any, ada: Member, free_ticket: tuple[Event, EventItem]
    ) -> None:
        settings.TESSERA_CHECKOUT_RATE = "2/m"
        client = portal_client(ada, "10.3.0.1")
        assert [register(client, free_ticket, n).status_code for n in range(2)] == [302, 302]

    def test_past_the_rate_per_member_the_rate_limited_page_answers(
        self, settings: Any, ada: Member, free_ticket: tuple[Event, EventItem]
    ) -> None:
        settings.TESSERA_CHECKOUT_RATE = "1/m"
        client = portal_client(ada, "10.3.0.2")
        register(client, free_ticket, 0)
        refused = register(client, free_ticket, 1)
        assert (refused.status_code, b"Too many attempts" in refused.content) == (429, True)

    def test_a_refused_registration_registers_nobody(
        self, settings: Any, ada: Member, free_ticket: tuple[Event, EventItem]
    ) -> None:
        settings.TESSERA_CHECKOUT_RATE = "1/m"
        client = portal_client(ada, "10.3.0.3")
        register(client, free_ticket, 0)
        register(client, free_ticket, 1)
        assert Checkout.objects.filter(event=free_ticket[0]).count() == 1

    def test_past_the_rate_per_client_another_member_is_refused(
        self, settings: Any, ada: Member, free_ticket: tuple[Event, EventItem]
    ) -> None:
        settings.TESSERA_CHECKOUT_RATE_PER_CLIENT = "1/m"
        register(portal_client(ada, "10.3.0.4"), free_ticket, 0)
        bob = member(program(name="Other", currency="EUR"), "bob@example.com")
        assert register(portal_client(bob, "10.3.0.4"), free_ticket, 1).status_code == 429


# --- password sign-in (link requests are covered in test_portal_signin) ----------------------


def test_password_attempts_per_address_are_rate_limited(ada: Member, settings: Any) -> None:
    settings.TESSERA_SIGNIN_RATE_PER_EMAIL = "2/h"
    codes = [
        Client(REMOTE_ADDR=f"10.4.0.{i}")
        .post("/signin", {"mode": "password", "login": "ada@example.com", "password": "wrong"})
        .status_code
        for i in range(3)
    ]
    assert codes == [422, 422, 429]
