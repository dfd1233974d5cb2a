"""No secret, API key, sign-in token or card data in any log line. A whole journey runs
through Django's test client with every logger at DEBUG (the root, django.request, and
django.db.backends with its SQL and parameters) and the console captured: an API key made
with the command, a contact, an event with a paid ticket bought by card, wallet credit
bought by card, a signed Stripe webhook, a sign-in link asked for, sent as the worker
sends it, and used. Then everything captured is searched for each secret the journey handled.

Card data and Stripe's own calls in every payment path are searched in
test_card_data_hygiene; this test is about the secrets of a whole journey."""

from __future__ import annotations

import io
import json
import logging
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import stripe
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from tessera.billing.models import Transaction
from tessera.notifications.models import OutboundEmail
from tessera.notifications.services import deliver_email
from tests.support.api import Api
from tests.support.portal import signin_link
from tests.support.stripe import card, pi_event, signed

pytestmark = pytest.mark.django_db

CARD = "4242424242424242"
CVC = "739"
# Digit runs a card number could be written as: contiguous, or in groups of four; not a
# piece of a longer word (hex, an id).
DIGIT_RUN = re.compile(r"(?<![\w.])(?:\d{13,19}|\d{4}(?:[ -]\d{4}){3})(?![\w.])")
CVC_FIELD = re.compile(r"\bcvc['\"]?\s*[:=]", re.IGNORECASE)
# SQLite's log writes a binary parameter (a stored API response) as hex: read it too.
HEX_BLOB = re.compile(r"(?:[0-9A-Fa-f]{2}){16,}")
# The SQL log's records (every statement with its parameters).
SQL = "django.db.backends"
# A record's own bookkeeping, not anything the code logged: the thread's ident is a
# 15-digit number that passes the Luhn check one run in ten.
RECORD_BOOKKEEPING = frozenset({"thread", "threadName", "process", "processName", "taskName"})


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, d in enumerate(int(c) for c in reversed(digits)):
        total += d if i % 2 == 0 else (d * 2 if d < 5 else d * 2 - 9)
    return total % 10 == 0


def card_numbers(text: str) -> list[str]:
    """Every 13-19 digit run in ``text`` that passes the Luhn check, as a card would."""
    runs = (re.sub(r"[ -]", "", m) for m in DIGIT_RUN.findall(text))
    return [run for run in runs if 13 <= len(run) <= 19 and luhn_ok(run)]


@dataclass
class Secrets:
    named: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, value: str) -> None:
        assert value, f"{name} is empty: the search for it would prove nothing"
        self.named[name] = value
        if quote(value, safe="") != value:  # a token in a URL is logged percent-encoded
            self.named[f"{name} (URL-encoded)"] = quote(value, safe="")

    def without(self, name: str) -> Secrets:
        return Secrets({k: v for k, v in self.named.items() if not k.startswith(name)})

    def found_in(self, text: str) -> list[str]:
        text += "\n".join(
            bytes.fromhex(blob).decode("utf-8", "replace") for blob in HEX_BLOB.findall(text)
        )
        found = [name for name, value in self.named.items() if value in text]
        found += [f"card number {n[:4]}…{n[-4:]}" for n in card_numbers(text)]
        if CVC_FIELD.search(text):
            found.append("a cvc field")
        return found


class Capture(logging.Handler):
    """Every record, with its arguments, extra fields and traceback."""

    def __init__(self, console: pytest.CaptureFixture[str]) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[tuple[str, str]] = []  # (logger, everything in the record)
        self.console = console

    @property
    def names(self) -> set[str]:
        return {name for name, _ in self.lines}

    def text(self, *, sql: bool) -> str:
        out, err = self.console.readouterr()  # what reached the console bypassing logging
        self.lines += [("stdout", out), ("stderr", err)]
        return "\n".join(line for name, line in self.lines if (name == SQL) == sql)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = f"{record.msg!r} % {record.args!r}"
        exc = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
        fields = {k: v for k, v in vars(record).items() if k not in RECORD_BOOKKEEPING}
        self.lines.append((record.name, f"{record.name} {message} {fields!r} {exc}"))


@pytest.fixture
def everything_logged(capfd: pytest.CaptureFixture[str]) -> Iterator[Capture]:
    """All loggers at DEBUG into one handler (also those that do not propagate), and SQL
    logged with its parameters as DEBUG mode would."""
    capture = Capture(capfd)
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    levels = {lg: lg.level for lg in loggers}
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        if lg is logging.getLogger() or not lg.propagate:
            lg.addHandler(capture)
    previous_disable = logging.root.manager.disable
    logging.disable(logging.NOTSET)
    connection.force_debug_cursor = True
    try:
        yield capture
    finally:
        connection.force_debug_cursor = False
        logging.disable(previous_disable)
        for lg, level in levels.items():
            lg.setLevel(level)
            lg.removeHandler(capture)


def j(response: Any) -> dict[str, Any]:
    assert response.status_code < 300, response.content
    return dict(json.loads(response.content))


def make_key(name: str, scope: str) -> str:
    out = io.StringIO()
    call_command("apikey", "create", "--name", name, "--scope", scope, stdout=out)
    return out.getvalue().strip()


def buy_ticket(api: Api, pm: str) -> dict[str, Any]:
    start = timezone.now() + timedelta(days=30)
    ev = j(api.post("/events", {"name": "Summit", "starts_at": start.isoformat(),
                                "ends_at": (start + timedelta(hours=6)).isoformat(),
                                "timezone": "Europe/Berlin", "currency": "EUR"}))  # fmt: skip
    ticket = j(api.post(f"/events/{ev['id']}/items",
                        {"name": "General", "kind": "ticket", "price": 5000}))  # fmt: skip
    ada = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}
    attendee = {**ada, "items": [{"item_id": ticket["id"], "quantity": 1}]}
    return j(api.post(f"/events/{ev['id']}/checkout",
                      {"buyer": ada, "attendees": [attendee],
                       "payment": {"method": "card", "payment_method_id": pm}},
                      headers={"Idempotency-Key": "journey-checkout"}))  # fmt: skip


def buy_credit(api: Api, pm: str) -> dict[str, Any]:
    prog = j(api.post("/programs", {"name": "Club", "points_per_unit": 100, "currency": "USD",
                                    "low_balance_threshold": 0}))  # fmt: skip
    member = j(api.post("/members", {"program_id": prog["id"], "contact": {
        "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}}))  # fmt: skip
    return j(api.post(f"/members/{member['id']}/credit-purchases",
                      {"amount": 2500, "currency": "USD", "payment_method_id": pm}))  # fmt: skip


def deliver_webhook(api: Api, checkout: dict[str, Any]) -> int:
    txn = Transaction.objects.get(pk=checkout["transaction"]["id"])
    event = pi_event("evt_journey", "payment_intent.succeeded",
                     str(txn.stripe_payment_intent_id), txn.amount, txn.pk)  # fmt: skip
    payload, signature = signed(event)
    response = api.client.post("/api/v1/webhooks/stripe", payload,
                               content_type="application/json",
                               headers={"Stripe-Signature": signature})  # fmt: skip
    return int(response.status_code)


def sign_in_by_link(email: str) -> tuple[str, int]:
    """Ask for a link, send it as the worker does, follow it: the token and the page's status."""
    browser = Client()
    assert browser.post("/signin", {"mode": "link", "email": email}).status_code == 200
    for queued in OutboundEmail.objects.filter(status=OutboundEmail.Status.QUEUED):
        assert deliver_email(queued.pk) == OutboundEmail.Status.SENT  # the worker's part
    path = signin_link(email)
    token = parse_qs(urlsplit(path).query)["token"][0]
    assert browser.get(path).status_code == 200  # the button; the token is not used yet
    used = browser.post("/signin/link", {"token": token, "next": "/wallet"})
    assert used.status_code == 302, used.content
    return token, int(browser.get("/wallet").status_code)


@pytest.fixture
def cards(stripe_env: stripe.StripeClient) -> tuple[str, str]:
    """The browser's part (Stripe.js talks to Stripe, not to us), before anything is logged."""
    return card(stripe_env, CARD, CVC), card(stripe_env, CARD, CVC)


def test_the_search_finds_a_card_number_written_in_groups() -> None:
    assert card_numbers("card 4242 4242 4242 4242 used") == [CARD]


def test_the_search_finds_any_luhn_valid_run() -> None:
    assert card_numbers("pan=4000056655665556;") == ["4000056655665556"]


def test_the_search_leaves_runs_failing_luhn() -> None:
    assert card_numbers("id 4242424242424241 and 1733222400") == []


def test_the_capture_leaves_out_the_thread_ident(capfd: pytest.CaptureFixture[str]) -> None:
    capture = Capture(capfd)
    capture.emit(logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None))
    assert str(threading.get_ident()) not in capture.text(sql=False)


def test_the_capture_keeps_extra_fields(capfd: pytest.CaptureFixture[str]) -> None:
    capture = Capture(capfd)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    record.card = CARD
    capture.emit(record)
    assert card_numbers(capture.text(sql=False)) == [CARD]


def test_the_search_finds_a_cvc_field() -> None:
    assert Secrets().found_in('{"cvc": "1"}') == ["a cvc field"]


def journey(settings: Any, cards: tuple[str, str]) -> Secrets:
    """The whole journey; the secrets it handled, by name."""
    known = Secrets()
    settings.SECRET_KEY = secrets.token_urlsafe(50)
    known.add("SECRET_KEY", settings.SECRET_KEY)
    known.add("the Stripe secret key", settings.STRIPE_SECRET_KEY)
    known.add("the webhook secret", settings.STRIPE_WEBHOOK_SECRET)
    known.add("the CVC", f"'{CVC}'")
    admin_key = make_key("journey", "admin")
    known.add("the API key", admin_key)
    api = Api(admin_key)
    wrong_key = "tsk_" + secrets.token_urlsafe(32)
    known.add("a wrong API key", wrong_key)
    assert Api(wrong_key).get("/contacts").status_code == 401

    j(api.post("/contacts", {"first_name": "Grace", "last_name": "Hopper",
                             "email": "grace@example.com"}))  # fmt: skip
    checkout = buy_ticket(api, cards[0])
    assert checkout["status"] == "paid"
    assert buy_credit(api, cards[1])["status"] == "succeeded"
    assert deliver_webhook(api, checkout) == 200
    token, wallet_status = sign_in_by_link("ada@example.com")
    known.add("the sign-in token", token)
    assert wallet_status == 200
    return known


def test_a_whole_journey_logs_no_secret(
    settings: Any, cards: tuple[str, str], everything_logged: Capture
) -> None:
    known = journey(settings, cards)
    assert {"django.request", SQL} <= everything_logged.names, "the capture hears too little"
    leaks = known.found_in(everything_logged.text(sql=False)) + known.found_in(
        everything_logged.text(sql=True)
    )
    assert leaks == []


def test_the_sql_log_carries_no_sign_in_token(everything_logged: Capture) -> None:
    from tests.support.loyalty import member, program

    member(program(), "ada@example.com")
    token, _ = sign_in_by_link("ada@example.com")
    assert token not in everything_logged.text(sql=True)


def test_the_access_log_line_leaves_out_query_and_referer() -> None:
    """gunicorn's access line as `tessera serve` configures it, for the GET of a sign-in
    link and the POST its page sends (whose Referer is that link)."""
    from gunicorn.config import Config
    from gunicorn.glogging import Logger, SafeAtoms

    from tessera.backoffice.management.commands.serve import ACCESS_LOG_FORMAT, gunicorn_argv

    assert ACCESS_LOG_FORMAT in gunicorn_argv("127.0.0.1", 8000, 1, 1)
    link = "/signin/link?token=AAAAAQ-secret-token&next=%2F"
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": link,
        "PATH_INFO": "/signin/link",
        "QUERY_STRING": link.partition("?")[2],
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_REFERER": f"https://tessera.example.org{link}",
        "REMOTE_ADDR": "10.0.0.1",
    }
    response = type("Response", (), {"status": "302 Found", "sent": 0, "headers": []})()
    atoms = Logger(Config()).atoms(response, [], environ, timedelta(milliseconds=5))
    assert "secret-token" not in ACCESS_LOG_FORMAT % SafeAtoms(atoms)  # as gunicorn formats
