"""The site's authorisation matrix: every URL pattern outside the API (which has its own
matrix) against every kind of visitor, derived from one table of who each page is for;
and a small check of the Django admin.

The rules, by the kind of page:

- public: anyone (sign-in pages);
- member: a signed-in person with a contact; signed out, to /signin?next=<the page>; a
  staff account with no contact gets 403 (a page that says so);
- owner: a member page showing one of the member's own records; another member's record
  answers 404, exactly like one that does not exist (never 403: an id is not confirmed);
- staff: staff accounts only; signed out, to /signin?next=; a member gets 404 (the staff
  pages are not a member's business).

A refused POST changes no table. A new URL pattern without an entry here fails until
its answer is written down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission, User
from django.test import Client, override_settings

from tessera.core.models import ApiKey
from tests.support.authz import (
    BACKEND,
    REMOTE,
    Route,
    World,
    changed_tables,
    shared_world,
    site_routes,
    snapshot,
    url_routes,
)

PUBLIC, MEMBER, OWNER, STAFF = "public", "member", "owner", "staff"
SCRAPER = "scraper"  # this machine, or the bearer of TESSERA_METRICS_TOKEN; else 404


@dataclass(frozen=True)
class Page:
    """Who a page is for, the methods it answers, what a POST sends (``{name}`` is a
    value of the world's records) and, for an owner page, which records it is tried on
    (a label and the record's key for each URL parameter; by default the parameter's
    own name)."""

    access: str
    methods: tuple[str, ...] = ("GET",)
    data: dict[str, str] = field(default_factory=dict)
    records: dict[str, dict[str, str]] = field(default_factory=lambda: {"": {}})


FORM_KEY = "authz-form-key-0000000001"
REGISTRATION = {
    "attendees": "1", "form_key": FORM_KEY, "a0_first_name": "Ada", "a0_last_name": "Member",
    "a0_email": "ada@example.com", "a0_ticket": "{item_id}", "payment": "wallet",
}  # fmt: skip
DETAILS = {"first_name": "Ada", "last_name": "Renamed", "email": "ada@example.com", "locale": "en"}

# The written-down truth: who each page is for.
PAGES: dict[str, Page] = {
    # operations: probes are public; the metrics are for the scraper
    "healthz": Page(PUBLIC),
    "readyz": Page(PUBLIC),  # 503 without a worker's heartbeat: still an answer
    "metrics": Page(SCRAPER),
    # signing in
    "signin": Page(PUBLIC, ("GET", "POST"), {"email": "ada@example.com"}),
    "signin_link": Page(PUBLIC),  # its POST spends a token: see test_portal_signin
    "signout": Page(PUBLIC, ("POST",)),
    # the member's own pages (their wallet, their profile: no id in the address)
    "home": Page(MEMBER),
    "wallet": Page(MEMBER),
    "wallet_csv": Page(MEMBER),
    "wallet_chart": Page(MEMBER),
    "earn": Page(MEMBER),
    "shop": Page(MEMBER),
    "shop_cart": Page(MEMBER, ("GET", "POST"), {"product_id": "{product_id}", "quantity": "2"}),
    "credit": Page(MEMBER, ("GET", "POST"), {"amount": "10.00", "form_key": FORM_KEY}),
    "profile": Page(MEMBER, ("GET", "POST"), DETAILS),
    "profile_password": Page(
        MEMBER, ("POST",), {"new_password1": "Tr1cky-horse-42", "new_password2": "Tr1cky-horse-42"}
    ),
    # events are for every member; tickets and what was bought are the owner's
    "events": Page(MEMBER),
    "event": Page(MEMBER, ("GET", "POST"), REGISTRATION),
    "event_calendar": Page(MEMBER),
    "event_waitlist": Page(MEMBER, ("POST",), {"item_id": "{full_item_id}", "form_key": FORM_KEY}),
    "tickets": Page(MEMBER),
    "event_checkout": Page(OWNER),
    "event_checkout_confirm": Page(OWNER, ("POST",)),
    "ticket": Page(OWNER),
    "ticket_cancel": Page(OWNER, ("GET", "POST"), {"form_key": FORM_KEY}),
    "invoice_pdf": Page(
        OWNER,
        records={
            "invoice": {"invoice_id": "invoice_id"},
            "credit note": {"invoice_id": "credit_note_id"},
        },
    ),
    "shop_order": Page(OWNER),
    "credit_receipt": Page(OWNER, ("GET", "POST")),
    # an activity belongs to its program: another program's is not there
    "earn_activity": Page(OWNER, ("GET", "POST"), {"answer": "Paris"}),
    "earn_progress": Page(
        OWNER, ("POST",), {"position": "40"}, {"video": {"activity_id": "video_id"}}
    ),
    # staff
    "staff_dashboard": Page(STAFF),
    "staff_chart": Page(STAFF, records={"": {"name": "chart"}}),
    "staff_checkin": Page(STAFF, ("GET", "POST"), {"code": "{code}", "event": "{event_id}"}),
    "staff_events": Page(STAFF),
    "staff_attendees": Page(STAFF),
    "staff_attendees_csv": Page(STAFF),
    "staff_attendee_checkin": Page(STAFF, ("POST",)),
    "staff_attendee_cancel": Page(STAFF, ("POST",), {"form_key": FORM_KEY, "refund": "on"}),
}

VISITORS = ("anonymous", "member", "other member's record", "staff")
ROUTES = {r.name: r for r in site_routes()}

pytestmark = pytest.mark.django_db


def expected(access: str, visitor: str) -> str:
    if access == PUBLIC:
        return "answered"
    if access == SCRAPER:
        return "404"  # every visitor comes from another machine, without the token
    if visitor == "anonymous":
        return "to sign-in"
    if access == STAFF:
        return "answered" if visitor == "staff" else "404"
    if visitor == "staff":
        return "403"  # a staff account is no member
    if visitor == "other member's record":
        return "404"
    return "answered"


def answer(response: Any, path: str) -> str:
    """What a visitor got, in the words of the table."""
    location = response.get("Location", "")
    if response.status_code == 302 and location.startswith("/signin?next="):
        right = location == f"/signin?next={quote(path)}"
        return "to sign-in" if right else f"to sign-in, but next= is not {path}: {location}"
    if response.status_code in (403, 404, 405, 500):
        return str(response.status_code)
    return "answered"  # 503 included: a readiness probe saying "not yet" has answered


def cells() -> list[Any]:
    out = []
    for name, route in ROUTES.items():
        page = PAGES.get(name, Page("unknown"))
        for label in page.records:
            for method in page.methods:
                for visitor in VISITORS:
                    if visitor == "other member's record" and page.access != OWNER:
                        continue  # only owner pages name a member's record
                    shown = " ".join(x for x in (name, label, method, visitor) if x)
                    out.append(pytest.param(route, label, method, visitor, id=shown))
    return out


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[World]:
    with shared_world(django_db_blocker) as built:
        yield built


def values_for(world: World, visitor: str) -> dict[str, str]:
    records = world.theirs if visitor == "other member's record" else world.mine
    return {**world.values, **records, "chart": "points"}


def address(world: World, route: Route, label: str, visitor: str) -> str:
    page = PAGES[route.name]
    records, keys = values_for(world, visitor), page.records[label]
    for param in route.params:
        key = keys.get(param, param)
        assert key in records, f"no record for {{{param}}} of {route.name}: add one to the world"
    return route.fill({p: records[keys.get(p, p)] for p in route.params})


def form(world: World, route: Route, visitor: str) -> dict[str, str]:
    records = values_for(world, visitor)
    return {k: v.format(**records) for k, v in PAGES[route.name].data.items()}


# --- the table is the URL configuration ------------------------------------------------------


def test_every_page_has_a_name_of_its_own() -> None:
    names = [r.name for r in site_routes()]
    assert sorted({n for n in names if names.count(n) > 1}) == []


def test_every_page_has_an_expected_answer() -> None:
    missing = sorted(set(ROUTES) - set(PAGES))
    assert not missing, f"write down who these pages are for: {missing}"


def test_every_entry_names_a_page_that_exists() -> None:
    stale = sorted(set(PAGES) - set(ROUTES))
    assert not stale, f"these entries name pages the URL configuration no longer has: {stale}"


def test_only_owner_pages_name_several_records() -> None:
    several = sorted(n for n, p in PAGES.items() if len(p.records) > 1 and p.access != OWNER)
    assert several == []


# --- the cells -------------------------------------------------------------------------------


@pytest.mark.parametrize(("route", "label", "method", "visitor"), cells())
def test_cell(world: World, route: Route, label: str, method: str, visitor: str) -> None:
    assert route.name in PAGES, f"{route.name} ({route.route}) has no expected answer"
    page = PAGES[route.name]
    path = address(world, route, label, visitor)
    browser = world.browser("member" if visitor == "other member's record" else visitor)
    want = expected(page.access, visitor)
    if method == "GET":
        assert answer(browser.get(path), path) == want
        return
    before = snapshot() if want != "answered" else None
    got = answer(browser.post(path, form(world, route, visitor)), path)
    assert got == want
    if before is not None:
        assert changed_tables(before, snapshot()) == []


# Lists of the member's own records: the ids of theirs each shows (and so the ids of another
# member's that it must never show).
LISTS = {
    "home": ("attendee_id", "activity_id", "video_id"),
    "tickets": ("attendee_id", "cancelled_attendee_id", "invoice_id", "credit_note_id"),
    "wallet_csv": ("checkout_id", "credit_note_id", "order_id"),
    "shop": ("product_id",),
    "earn": ("activity_id", "video_id"),
}


def list_cells() -> list[Any]:
    return [
        pytest.param(name, kind, id=f"{name} {kind}")
        for name, kinds in LISTS.items()
        for kind in kinds
    ]


@pytest.mark.parametrize(("name", "kind"), list_cells())
def test_a_list_shows_the_members_own_record(world: World, name: str, kind: str) -> None:
    page = world.browser("member").get(ROUTES[name].fill({})).content.decode()
    assert world.mine[kind] in page


@pytest.mark.parametrize(("name", "kind"), list_cells())
def test_a_list_never_shows_another_members_record(world: World, name: str, kind: str) -> None:
    page = world.browser("member").get(ROUTES[name].fill({})).content.decode()
    assert world.theirs[kind] not in page


# POSTs that write no table even when allowed, so a refusal of theirs has nothing to undo.
WRITES_NOTHING = {
    "shop_cart": "the cart lives in the session",
    "credit": "paying needs a card from Stripe.js; the form sent is refused (422)",
    "credit_receipt": "the member's top-up is settled already",
    "event_checkout_confirm": "the member's checkout is final already",
}


def refused_posts() -> list[Any]:
    return [
        pytest.param(ROUTES[name], label, id=" ".join(x for x in (name, label) if x))
        for name, page in PAGES.items()
        if name in ROUTES and "POST" in page.methods and page.access != PUBLIC
        for label in page.records
        if name not in WRITES_NOTHING
    ]


@pytest.mark.parametrize(("route", "label"), refused_posts())
def test_the_refused_post_would_have_written(world: World, route: Route, label: str) -> None:
    """A refused POST changing nothing means something only if, allowed, it writes."""
    visitor = "staff" if PAGES[route.name].access == STAFF else "member"
    browser = world.browser(visitor)
    before = snapshot()
    browser.post(address(world, route, label, visitor), form(world, route, visitor))
    assert changed_tables(before, snapshot()) != []


def posts() -> list[Any]:
    return [
        pytest.param(ROUTES[name], label, id=" ".join(x for x in (name, label) if x))
        for name, page in PAGES.items()
        if name in ROUTES and "POST" in page.methods
        for label in page.records
    ]


@pytest.mark.parametrize(("route", "label"), posts())
def test_a_post_from_another_site_is_refused(world: World, route: Route, label: str) -> None:
    """Without the CSRF token the page drew, the POST a visitor's browser is tricked into
    sending (by the visitor the page is for) is refused, and changes nothing."""
    access = PAGES[route.name].access
    visitor = {PUBLIC: "member", STAFF: "staff"}.get(access, "member")
    browser = world.browser(visitor)
    browser.handler.enforce_csrf_checks = True
    before = snapshot()
    response = browser.post(address(world, route, label, visitor), form(world, route, visitor))
    assert response.status_code == 403
    assert changed_tables(before, snapshot()) == []


# --- the admin -------------------------------------------------------------------------------


def admin_pages() -> list[Any]:
    """The admin's addresses that take no id: its index and each model's list and form."""
    skip = {"admin/login/", "admin/logout/"}
    return [
        pytest.param(r.route, id=r.name)
        for r in url_routes()
        if r.route.startswith("admin/")
        and not r.params
        and "(" not in r.route
        and r.route not in skip
    ]


@pytest.mark.parametrize("route", admin_pages())
@pytest.mark.parametrize("visitor", ["anonymous", "member"])
def test_the_admin_sends_a_non_staff_visitor_to_its_sign_in(
    world: World, route: str, visitor: str
) -> None:
    path = f"/{route}"
    response = world.browser(visitor).get(path)
    assert (response.status_code, response.get("Location")) == (
        302,
        f"/admin/login/?next={quote(path)}",
    )


def test_the_admin_lets_staff_in(world: World) -> None:
    assert world.browser("staff").get("/admin/").status_code == 200


def test_a_member_posting_to_the_admin_changes_nothing(world: World) -> None:
    browser = world.browser("member")
    before = snapshot()
    browser.post("/admin/crm/contact/add/", {"first_name": "X", "last_name": "Y"})
    assert changed_tables(before, snapshot()) == []


def test_the_admin_invoice_pdf_needs_the_view_permission(world: World) -> None:
    path = f"/admin/billing/invoice/{world.mine['invoice_id']}/pdf/"
    assert world.browser("staff").get(path).status_code == 403  # staff, with no permissions


def active_keys() -> object:
    return sorted(ApiKey.objects.filter(revoked_at__isnull=True).values_list("pk", flat=True))


# Admin actions that change records, tried by a staff member who was given the permission
# to look at those records and nothing more. Django offers an action that declares no
# ``allowed_permissions`` to whoever sees the list.
VIEW_ONLY_ACTIONS = [
    pytest.param("core", "apikey", "revoke", active_keys, id="revoke API keys"),
    pytest.param("events", "attendee", "cancel_selected", snapshot, id="cancel tickets"),
    pytest.param("events", "attendee", "check_in_selected", snapshot, id="check attendees in"),
    pytest.param("notifications", "outboundemail", "retry", snapshot, id="retry emails"),
]


@pytest.mark.parametrize(("app", "model", "action", "measure"), VIEW_ONLY_ACTIONS)
def test_a_staff_member_who_may_only_view_cannot_run_an_action(
    world: World, app: str, model: str, action: str, measure: Callable[[], object]
) -> None:
    viewer = User.objects.create_user("viewer", "viewer@tessera.test", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename=f"view_{model}"))
    browser = Client(REMOTE_ADDR=REMOTE)
    browser.force_login(viewer, backend=BACKEND)
    rows = list(apps.get_model(app, model)._default_manager.values_list("pk", flat=True))
    before = measure()
    browser.post(f"/admin/{app}/{model}/", {"action": action, "_selected_action": rows})
    assert measure() == before


def test_a_staff_member_who_may_change_keys_can_revoke_them(world: World) -> None:
    keeper = User.objects.create_user("keeper", "keeper@tessera.test", is_staff=True)
    keeper.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_apikey", "change_apikey"])
    )
    browser = Client(REMOTE_ADDR=REMOTE)
    browser.force_login(keeper, backend=BACKEND)
    rows = active_keys()
    browser.post("/admin/core/apikey/", {"action": "revoke", "_selected_action": rows})
    assert active_keys() == []


def test_the_admin_sign_in_is_public(world: World) -> None:
    assert Client().get("/admin/login/").status_code == 200


# --- the metrics -----------------------------------------------------------------------------


def test_the_metrics_answer_this_machine(world: World) -> None:
    assert world.browser("anonymous", address="127.0.0.1").get("/metrics").status_code == 200


def test_the_metrics_refuse_a_request_a_local_proxy_relayed(world: World) -> None:
    browser = world.browser("anonymous", address="127.0.0.1")
    response = browser.get("/metrics", headers={"X-Forwarded-For": "198.51.100.4"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("authorization", "status"),
    [(None, 404), ("Bearer wrong-token", 404), ("Bearer scrape-token-1", 200)],
    ids=["no token", "wrong token", "the token"],
)
@override_settings(TESSERA_METRICS_TOKEN="scrape-token-1")
def test_with_a_token_the_metrics_answer_its_bearer_only(
    world: World, authorization: str | None, status: int
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    assert world.browser("anonymous").get("/metrics", headers=headers).status_code == status
