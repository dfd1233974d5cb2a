"""What the authorisation matrix needs: the endpoints as the site declares them (the OpenAPI
document, the URL configuration), one shared set of records to point them at, the
principals that knock, and a snapshot of every table to prove a refused request wrote
nothing. The expected answers are not here: they are written down in the matrix tests."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from tessera.billing.models import Invoice, Transaction
from tessera.core.apikeys import create_api_key, revoke_api_key
from tessera.core.models import SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE
from tessera.crm.inputs import AccountInput, ContactInput
from tessera.crm.models import MatchingRule
from tessera.crm.services import create_account, create_lead
from tessera.events.cancellation import cancel_attendee
from tessera.events.checkout import check_out
from tessera.events.models import Attendee, Checkout, Event, EventItem
from tessera.events.requests import AttendeeIn, CheckoutIn, LineIn, PaymentIn, PersonIn
from tessera.loyalty.activities import ActivitySpec, create_activity
from tessera.loyalty.credit import PURPOSE as TOPUP
from tessera.loyalty.models import Member, Program
from tessera.loyalty.ordering import OrderLineSpec, place_order
from tessera.portal.identity import user_for_contact
from tests.support.events import event, item
from tests.support.loyalty import member, product, program, question

API_PREFIX = "/api/v1"
BACKEND = "django.contrib.auth.backends.ModelBackend"
# An id no table holds, for operations that would act on what they are pointed at: a 404
# there is the honest answer once the key has been accepted.
MISSING = "zz_missing_0000"
# Where the site's visitors come from: another machine (an address for documentation).
REMOTE = "203.0.113.7"

# --- the endpoints ---------------------------------------------------------------------------

_CONVERTER = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>[^>]+)>")


def operation_key(method: str, path: str) -> str:
    """``"POST /contacts"``: the method and the path template below ``/api/v1``."""
    return f"{method.upper()} {path.removeprefix(API_PREFIX)}"


def api_operations(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every operation the OpenAPI document lists, by ``"METHOD /path"``."""
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return {
        operation_key(method, path): op
        for path, ops in schema.get("paths", {}).items()
        for method, op in ops.items()
        if method in methods
    }


def path_parameters(template: str) -> list[str]:
    return re.findall(r"{([^}]+)}", template)


@dataclass(frozen=True)
class Route:
    """One URL pattern: its name (or its route when it has none) and its route."""

    name: str
    route: str

    @property
    def params(self) -> list[str]:
        return [m["name"] for m in _CONVERTER.finditer(self.route)]

    @property
    def template(self) -> str:
        """The route with ``{name}`` for each converter, as OpenAPI writes paths."""
        return "/" + _CONVERTER.sub(lambda m: "{" + m["name"] + "}", self.route)

    def fill(self, values: dict[str, str]) -> str:
        return "/" + _CONVERTER.sub(lambda m: values[m["name"]], self.route)


def url_routes() -> list[Route]:
    """Every URL pattern of the site, nested includes walked, in resolution order."""

    def walk(patterns: list[Any], prefix: str) -> Iterator[Route]:
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                route = prefix + str(p.pattern)
                yield Route(p.name or route, route)

    return list(walk(get_resolver().url_patterns, ""))


def site_routes() -> list[Route]:
    """The site's own pages: everything but the API (its document covers it) and the admin."""
    return [r for r in url_routes() if not r.route.startswith(("api/v1/", "admin/"))]


def api_routes() -> list[Route]:
    return [r for r in url_routes() if r.route.startswith("api/v1/")]


# --- one snapshot of every table -------------------------------------------------------------

# Tables a request may touch without acting: the API key's last use (written after the
# request) and the browser's session row (signing a test client in writes it).
UNWATCHED = {"core.apikey", "sessions.session"}


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, by model: equal snapshots mean nothing was written."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for model in apps.get_models():
        label = model._meta.label_lower
        if label in UNWATCHED or model._meta.proxy or not model._meta.managed:
            continue
        rows[label] = sorted(model._default_manager.values_list(), key=repr)
    return rows


def changed_tables(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(label for label in after if before.get(label) != after[label])


# --- the records every cell points at --------------------------------------------------------


@dataclass
class ApiPrincipal:
    name: str
    authorization: str | None  # the Authorization header, None for none
    scopes: tuple[str, ...] | None  # None: not authenticated

    def client_headers(self) -> dict[str, str]:
        return {} if self.authorization is None else {"Authorization": self.authorization}


@dataclass
class World:
    """Two members in two programs, each with a paid checkout (two tickets, one cancelled
    and credited), an order, a card top-up and their program's activities; a staff user;
    CRM records; and API keys of every kind."""

    api_ids: dict[str, str] = field(default_factory=dict)
    mine: dict[str, str] = field(default_factory=dict)
    theirs: dict[str, str] = field(default_factory=dict)
    principals: dict[str, ApiPrincipal] = field(default_factory=dict)
    member_a: Member | None = None
    member_b: Member | None = None
    users: dict[str, Any] = field(default_factory=dict)  # "member" (A), "staff"
    values: dict[str, str] = field(default_factory=dict)

    def browser(self, who: str, address: str = REMOTE) -> Client:
        """A browser on another machine: ``anonymous``, ``member`` (A), ``staff``."""
        client = Client(REMOTE_ADDR=address)
        if who != "anonymous":
            client.force_login(self.users[who], backend=BACKEND)
        return client


def _paid_checkout(m: Member, ev: Event, ticket: EventItem, guest: str) -> Checkout:
    c = m.contact
    buyer = PersonIn(c.first_name, c.last_name, c.email)
    other = PersonIn(guest.title(), "Guest", f"{guest}@example.org")
    done = check_out(
        CheckoutIn(
            event_id=ev.pk,
            buyer=buyer,
            attendees=(
                AttendeeIn(person=buyer, items=(LineIn(ticket.pk),)),
                AttendeeIn(person=other, items=(LineIn(ticket.pk),)),
            ),
            payment=PaymentIn("wallet", member_id=m.pk),
        )
    )
    return Checkout.objects.get(pk=done.checkout_id)


def _records_of(m: Member, prog: Program, name: str, topup_status: str) -> dict[str, str]:
    """One member's records, by the URL parameter that names them."""
    ev = event(name=f"Summit {name}", currency=prog.currency, program_id=prog.pk, capacity=50)
    ticket = item(ev, price=1000, name="Pass")
    full = item(ev, price=1000, name="Sold out", capacity=0)
    checkout = _paid_checkout(m, ev, ticket, guest=f"guest-{name.lower()}")
    kept, cancelled = Attendee.objects.filter(checkout=checkout).order_by("pk")[:2]
    cancel_attendee(cancelled.pk, refund=True)
    note = Invoice.objects.get(credits_id=checkout.invoice_id)
    prod = product(prog, 100, name=f"Mug {name}")
    order = place_order(m.pk, [OrderLineSpec(prod.pk, 1)]).order
    video = create_activity(ActivitySpec(
        program_id=prog.pk, kind="video", title=f"Video {name}", points=5,
        video_url="https://video.example.org/intro.mp4", min_watch_seconds=30,
    ))  # fmt: skip
    topup = Transaction.objects.create(
        contact=m.contact, amount=2500, currency=prog.currency, status=topup_status,
        purpose=TOPUP, purpose_id=m.pk,
    )  # fmt: skip
    return {
        "event_id": ev.pk,
        "item_id": ticket.pk,
        "full_item_id": full.pk,
        "checkout_id": checkout.pk,
        "attendee_id": kept.pk,
        "cancelled_attendee_id": cancelled.pk,
        "code": kept.code,
        "invoice_id": str(checkout.invoice_id),
        "credit_note_id": note.pk,
        "order_id": order.pk,
        "product_id": prod.pk,
        "activity_id": question(prog, title=f"Question {name}").pk,
        "video_id": video.pk,
        "transaction_id": topup.pk,
        "member_id": m.pk,
        "program_id": prog.pk,
        "contact_id": m.contact_id,
    }


def build_world() -> World:
    world = World()
    club_a = program(name="Club A", currency="EUR", points_per_unit=100, low_balance_threshold=0)
    club_b = program(name="Club B", currency="EUR", points_per_unit=100, low_balance_threshold=0)
    world.member_a = member(club_a, "ada@example.com", points=100_000)
    world.member_b = member(club_b, "bob@example.org", points=100_000)
    world.mine = _records_of(world.member_a, club_a, "A", Transaction.Status.CAPTURED)
    world.theirs = _records_of(world.member_b, club_b, "B", Transaction.Status.PENDING)
    world.users = {
        "member": user_for_contact(world.member_a.contact),
        "staff": User.objects.create_user("door", "door@tessera.test", is_staff=True),
    }
    user_for_contact(world.member_b.contact)  # B signs in too: their sign-in exists
    a = world.mine
    lead = create_lead(
        ContactInput(first_name="Lea", last_name="Lead", email="lea@example.net"),
        check_duplicates=False,
    ).record
    account = create_account(AccountInput(name="Acme Ltd"), check_duplicates=False).record
    rule = MatchingRule.objects.order_by("pk").first()
    assert rule is not None, "the standard matching rules exist from the start"
    world.api_ids = {
        **{k: v for k, v in a.items() if k.endswith("_id")},
        "lead_id": lead.pk,
        "account_id": account.pk,
        "rule_id": str(rule.pk),
    }
    world.values = {**a, "lead_id": lead.pk, "account_id": account.pk, "rule_id": str(rule.pk)}
    _, revoked = create_api_key("revoked", [SCOPE_ADMIN])
    key = _key_for(revoked)
    revoke_api_key(key)
    kinds: list[tuple[str, str | None, tuple[str, ...] | None]] = [
        ("no key", None, None),
        ("malformed key", "Bearer not a key", None),
        ("revoked key", f"Bearer {revoked}", None),
    ]
    for scopes in ((SCOPE_READ,), (SCOPE_WRITE,), (SCOPE_READ, SCOPE_WRITE), (SCOPE_ADMIN,)):
        _, raw = create_api_key("+".join(scopes), scopes)
        kinds.append((f"{'+'.join(scopes)} key", f"Bearer {raw}", scopes))
    world.principals = {n: ApiPrincipal(n, h, s) for n, h, s in kinds}
    return world


def _key_for(raw: str) -> Any:
    from tessera.core.apikeys import digest
    from tessera.core.models import ApiKey

    return ApiKey.objects.get(key_hash=digest(raw))


@contextmanager
def shared_world(blocker: Any) -> Iterator[World]:
    """The world, built once inside a transaction the module's tests nest in (each test
    still rolls its own changes back) and rolled back when the module is done."""
    with blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            world = build_world()
        except BaseException:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            raise
    try:
        yield world
    finally:
        with blocker.unblock():
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


# --- request bodies --------------------------------------------------------------------------

RULE_BODY = {
    "object": "contact",
    "name": "By birthday",
    "logic": "1 AND 2",
    "criteria": [
        {"field": "last_name", "method": "last_name", "threshold": 90},
        {"field": "birthdate", "method": "exact", "threshold": 100},
    ],
}


def write_bodies(v: dict[str, str]) -> dict[str, dict[str, Any]]:
    """For each write operation, a body it would act on: a refused request sending it must
    still change nothing (the matrix checks that such a body does write when allowed)."""
    soon = (timezone.now() + timedelta(days=60)).isoformat()
    later = (timezone.now() + timedelta(days=60, hours=4)).isoformat()
    person = {"first_name": "Nia", "last_name": "New", "email": "nia@example.net"}
    return {
        "POST /contacts": person,
        "PATCH /contacts/{contact_id}": {"city": "Lisbon"},
        "POST /leads": person,
        "PATCH /leads/{lead_id}": {"city": "Lisbon"},
        "POST /accounts": {"name": "Globex"},
        "PATCH /accounts/{account_id}": {"city": "Lisbon"},
        "POST /matching-rules": RULE_BODY,
        "PUT /matching-rules/{rule_id}": {"name": "Renamed"},
        "DELETE /matching-rules/{rule_id}": {},
        "POST /programs": {"name": "Club C", "points_per_unit": 10, "currency": "EUR"},
        "POST /members": {"program_id": v["program_id"], "contact": person},
        "POST /members/{member_id}/adjustments": {"points": 10, "reason": "gift"},
        "POST /activities": {
            "program_id": v["program_id"],
            "kind": "vote",
            "title": "Pick",
            "points": 1,
            "question": "Which?",
            "options": ["x", "y"],
        },
        "POST /members/{member_id}/activities/{activity_id}/completions": {"answer": "Paris"},
        "POST /products": {"program_id": v["program_id"], "name": "Cap", "price_points": 5},
        "POST /members/{member_id}/orders": {
            "lines": [{"product_id": v["product_id"], "quantity": 1}]
        },
        "POST /orders/{order_id}/refund": {},
        "POST /events": {
            "name": "Fair",
            "starts_at": soon,
            "ends_at": later,
            "timezone": "Europe/Lisbon",
            "currency": "EUR",
        },
        "PATCH /events/{event_id}": {"name": "Renamed"},
        "POST /events/{event_id}/items": {"name": "Extra", "price": 100},
        "POST /events/{event_id}/questions": {"label": "Diet", "type": "text"},
        "POST /events/{event_id}/promo-codes": {"code": "SAVE", "percent_off": 10},
        "POST /events/{event_id}/checkout": {
            "buyer": person,
            "attendees": [{**person, "items": [{"item_id": v["item_id"], "quantity": 1}]}],
            "payment": {"method": "wallet", "member_id": v["member_id"]},
        },
        "POST /events/{event_id}/waitlist": {"item_id": v["full_item_id"], "person": person},
        "POST /check-ins": {"code": v["code"]},
        "POST /attendees/{attendee_id}/check-in": {},
        "POST /attendees/{attendee_id}/cancel": {"refund": False},
        "POST /invoices/{invoice_id}/refunds": {"amount": 100},
    }


def encode(body: Any) -> str:
    return json.dumps(body)
