"""The demo data set, loaded once by ``tessera demo``, and the demo's database and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction

from tessera.backoffice.demo_events import load_demo_events
from tessera.backoffice.demo_state import (
    STATE_API_KEY,
    mark_demo_database,
    read_state,
    state_file,
    update_state,
)
from tessera.core.apikeys import create_api_key, digest
from tessera.core.models import SCOPE_ADMIN, ApiKey
from tessera.crm import services as crm
from tessera.crm.models import Contact
from tessera.loyalty.activities import ActivitySpec, complete_activity, create_activity
from tessera.loyalty.adjustments import adjust_points
from tessera.loyalty.ordering import OrderLineSpec, ProductSpec, create_product, place_order
from tessera.loyalty.programs import ProgramSpec, create_program, enroll_member
from tessera.notifications.services import queue_email

DEMO_ADMIN_USER = "admin"
DEMO_ADMIN_PASSWORD = "tessera-demo"  # noqa: S105 - printed to the person running the demo
DEMO_KEY_NAME = "demo"
DEMO_MEMBER_EMAIL = "ada@northwind.example"  # a member with a wallet, for the portal
# A short CC0 film (MDN's examples); the portal plays it from there (https media is allowed).
DEMO_VIDEO_URL = "https://interactive-examples.mdn.mozilla.net/media/cc0-videos/flower.webm"

ACCOUNTS = [
    {"name": "Northwind Traders", "website": "northwind.example", "city": "Seattle",
     "postal_code": "98101", "country": "US", "phone": "+1 206 555 0100"},
    {"name": "Contoso Events Ltd", "website": "contoso.example", "city": "London",
     "postal_code": "EC1A 1BB", "country": "GB"},
]  # fmt: skip
CONTACTS: list[dict[str, Any]] = [
    {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@northwind.example",
     "company": "Northwind Traders", "title": "CTO", "city": "Seattle", "country": "US"},
    {"first_name": "Grace", "last_name": "Hopper", "email": "grace@contoso.example",
     "company": "Contoso Events Ltd", "title": "Head of Programs", "city": "London",
     "country": "GB"},
    {"first_name": "Alan", "last_name": "Turing", "email": "alan.turing@example.org",
     "phone": "+44 20 7946 0000", "city": "Manchester", "country": "GB"},
    {"first_name": "Katherine", "last_name": "Johnson", "email": "kj@example.com",
     "city": "Hampton", "postal_code": "23669", "country": "US"},
]  # fmt: skip
LEADS: list[dict[str, Any]] = [
    {"first_name": "Margaret", "last_name": "Hamilton", "email": "margaret@apollo.example",
     "company": "Apollo Guidance", "title": "Director"},
]  # fmt: skip


def demo_data_loaded() -> bool:
    return get_user_model().objects.filter(username=DEMO_ADMIN_USER).exists()


@transaction.atomic
def load_demo_data() -> None:
    User = get_user_model()
    User.objects.create_superuser(DEMO_ADMIN_USER, "admin@tessera.local", DEMO_ADMIN_PASSWORD)
    accounts = {a["name"]: crm.create_account(crm.AccountInput(**a)).record for a in ACCOUNTS}
    for data in CONTACTS:
        account = accounts.get(str(data.get("company", "")))
        crm.create_contact(crm.ContactInput(**data, account_id=account.pk if account else None))
    for data in LEADS:
        crm.create_lead(crm.LeadInput(**data))
    _load_loyalty()
    load_demo_events()
    first = Contact.objects.get(email="ada@northwind.example")
    queue_email(
        "welcome",
        to=first.email,
        contact=first,
        context={"first_name": first.first_name, "message": "Your demo workspace is ready."},
    )


def demo_database_file() -> Path | None:
    """The demo's SQLite file; None when the demo runs on a database server."""
    db = settings.DATABASES["default"]
    name = str(db.get("NAME") or "")
    if db["ENGINE"] != "django.db.backends.sqlite3" or name in ("", ":memory:"):
        return None
    return Path(name)


def demo_state_file() -> Path:
    return state_file(demo_database_file())


def prepare_demo_database() -> bool:
    """What every demo start does to its database: migrate, load the demo data once, and
    mark a SQLite file as the demo's, so commands run beside it use the demo's settings.
    True when the data was loaded now."""
    call_command("migrate", interactive=False, verbosity=0)
    loaded = not demo_data_loaded()
    if loaded:
        load_demo_data()
    database = demo_database_file()
    if database is not None:
        mark_demo_database(database)
    return loaded


@transaction.atomic
def demo_api_key(state: Path) -> tuple[str, str]:
    """The demo's admin key and a note for the person running it (empty when there is
    nothing to say). The same key at every start, so one copied from an earlier start
    keeps working; if they revoked it, a new one, and the note says so."""
    raw = read_state(state).get(STATE_API_KEY, "")
    key = ApiKey.objects.filter(key_hash=digest(raw)).first() if raw else None
    if key is not None and key.revoked_at is None:
        return raw, ""
    note = ""
    if key is not None:
        note = f"The demo's previous API key ({key.id}) was revoked, so this is a new one."
    _, raw = create_api_key(DEMO_KEY_NAME, [SCOPE_ADMIN])
    # Only the demo keeps a raw key, beside its own database and readable by its owner only.
    update_state(state, **{STATE_API_KEY: raw})
    return raw, note


def _load_loyalty() -> None:
    """A loyalty program with members, activities, products and some history."""
    program = create_program(ProgramSpec(
        name="Tessera Rewards", points_per_unit=100, currency="USD",
        low_balance_threshold=500, points_expire_after_days=365, attendance_points=200,
    ))  # fmt: skip
    ada = Contact.objects.get(email="ada@northwind.example")
    grace = Contact.objects.get(email="grace@contoso.example")
    ada_member, _ = enroll_member(program.pk, contact_id=ada.pk)
    grace_member, _ = enroll_member(program.pk, contact_id=grace.pk)
    adjust_points(ada_member.pk, points=2500, reason="Welcome bonus")
    adjust_points(grace_member.pk, points=800, reason="Welcome bonus")
    quiz = create_activity(ActivitySpec(
        program_id=program.pk, kind="question", title="Who wrote the first program?",
        points=150, question="Who wrote the first published computer program?",
        options=["Ada Lovelace", "Alan Turing", "Grace Hopper"],
        correct_option="Ada Lovelace",
    ))  # fmt: skip
    create_activity(ActivitySpec(
        program_id=program.pk, kind="vote", title="Next meetup venue", points=50,
        question="Where should we meet next?", options=["London", "Seattle", "Online"],
    ))  # fmt: skip
    create_activity(ActivitySpec(
        program_id=program.pk, kind="video", title="Welcome video", points=75,
        video_url=DEMO_VIDEO_URL, min_watch_seconds=4,
    ))  # fmt: skip
    complete_activity(ada_member.pk, quiz.pk, answer="Ada Lovelace")
    mug = create_product(
        ProductSpec(program_id=program.pk, name="Tessera mug", price_points=600, stock=40)
    )
    create_product(
        ProductSpec(program_id=program.pk, name="Conference day pass", price_points=3000, stock=10)
    )
    create_product(ProductSpec(program_id=program.pk, name="Sticker pack", price_points=100))
    place_order(ada_member.pk, [OrderLineSpec(mug.pk, 1)])
