"""Duplicate matching through the services and the API, on the standard rules."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from tessera.crm import services
from tessera.crm.inputs import AccountInput, ContactChanges, ContactInput
from tessera.crm.matching import engine, rules
from tessera.crm.matching.inputs import CriterionInput, RuleChanges, RuleInput
from tessera.crm.matching.models import MatchingRule, MatchKey
from tessera.crm.matching.services import create_rule, rebuild_match_keys, update_rule
from tessera.crm.models import Contact, Lead
from tests.support.api import Api, assert_problem

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_rules")]

ADA = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "phone": "+1 415 555 1234",
    "company": "Analytical Engines Ltd",
    "title": "Director of Computing",
    "street": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
}


def contact(**overrides: Any) -> Contact:
    return services.create_contact(ContactInput(**{**ADA, **overrides})).record


def only(**fields: Any) -> dict[str, Any]:
    """A record with just these fields of Ada's."""
    return {k: ADA[k] for k in fields} | {k: v for k, v in fields.items() if v is not True}


def matched_ids(record: dict[str, Any], obj: str = "contact") -> list[str]:
    return [m.id for m in engine.find_matches(obj, record).matches]


def test_standard_rules_exist_after_migrate() -> None:
    standard = MatchingRule.objects.filter(is_standard=True)
    assert sorted(standard.values_list("object", flat=True)) == ["account", "contact", "lead"]
    person = standard.get(object="contact")
    assert person.criteria.count() == 9
    assert person.logic.startswith("(1 AND 2 AND 3 AND 4) OR (1 AND 2 AND 5)")


# Each OR group of the standard contact rule, positive and negative. The stored contact
# has every field; the incoming record has only the group's fields.
GROUPS = [
    ("name+title+company", {"first_name", "last_name", "title", "company"}),
    ("name+email", {"first_name", "last_name", "email"}),
    ("name+phone", {"first_name", "last_name", "phone"}),
    ("name+street+city", {"first_name", "last_name", "street", "city"}),
    ("name+street+zip", {"first_name", "last_name", "street", "postal_code"}),
    ("name+street+title", {"first_name", "last_name", "street", "title"}),
]


@pytest.mark.parametrize(("name", "fields"), GROUPS, ids=[g[0] for g in GROUPS])
def test_each_group_matches(name: str, fields: set[str]) -> None:
    stored = contact()
    assert matched_ids({f: ADA[f] for f in fields}) == [stored.pk]


@pytest.mark.parametrize(("name", "fields"), GROUPS, ids=[g[0] for g in GROUPS])
def test_each_group_fails_without_its_distinguishing_field(name: str, fields: set[str]) -> None:
    contact()
    partial = {f: ADA[f] for f in fields if f not in {"first_name", "last_name"}}
    # Names alone never match, and the group's other fields with a different person don't.
    assert matched_ids({"first_name": "Ada", "last_name": "Lovelace"}) == []
    assert matched_ids({"first_name": "Grace", "last_name": "Hopper", **partial}) == []


def test_fuzzy_methods_in_matching() -> None:
    stored = contact()
    assert matched_ids({"first_name": "A", "last_name": "Lovelace", "email": ADA["email"]}) == [
        stored.pk
    ]
    assert (
        matched_ids({"first_name": "Augusta", "last_name": "Lovelace", "email": ADA["email"]}) == []
    )
    bob = contact(
        first_name="Robert", last_name="Smith", email="rs@example.com", phone="+1 212 555 0199"
    )
    assert matched_ids({"first_name": "Bob", "last_name": "Smith", "phone": "(212) 555-0199"}) == [
        bob.pk
    ]


def test_swapped_first_and_last_names_match() -> None:
    stored = contact()
    assert matched_ids({"first_name": "Lovelace", "last_name": "Ada", "email": ADA["email"]}) == [
        stored.pk
    ]


def test_blank_fields_do_not_match_unless_match_blank() -> None:
    contact(title="", company="")
    # Group (1 AND 2 AND 3 AND 4) with title and company blank on both sides.
    assert matched_ids({"first_name": "Ada", "last_name": "Lovelace"}) == []
    create_rule(
        RuleInput(
            object="contact",
            name="Name and blank email",
            logic="1 AND 2 AND 3",
            criteria=(
                CriterionInput("first_name", "first_name", threshold=85),
                CriterionInput("last_name", "exact", threshold=100),
                CriterionInput("email", "email", threshold=100, match_blank=True),
            ),
        )
    )
    rules.invalidate()
    rebuild_match_keys("contact")
    no_email = contact(email="", phone="")
    assert matched_ids({"first_name": "Ada", "last_name": "Lovelace"}) == [no_email.pk]


@pytest.mark.parametrize("placeholder", ["N/A", "n/a", "-", "Unknown", "?"])
def test_placeholders_are_blank_not_a_match(placeholder: str) -> None:
    """Same name and company (so a candidate), different titles, and phone "N/A" on both:
    not (1 AND 2 AND 6): a placeholder is blank, and blank never matches."""
    contact(email="", title="Countess", street="", city="", postal_code="", phone=placeholder)
    probe = {"first_name": "Ada", "last_name": "Lovelace", "company": ADA["company"],
             "title": "Engineer", "phone": placeholder.lower()}  # fmt: skip
    assert matched_ids(probe) == []
    # A real phone on both still matches.
    real = contact(email="", title="Countess", street="", city="", postal_code="",
                   phone="+1 415 555 9999")  # fmt: skip
    assert matched_ids({**probe, "phone": "(415) 555-9999"}) == [real.pk]


def test_cross_object_contact_and_lead() -> None:
    lead = services.create_lead(ContactInput(**ADA)).record
    assert lead.pk.startswith("lea_")
    found = engine.find_matches("contact", only(first_name=True, last_name=True, email=True))
    assert [(m.object, m.id) for m in found.matches] == [("lead", lead.pk)]
    stored = contact()
    found = engine.find_matches("lead", only(first_name=True, last_name=True, email=True))
    assert {(m.object, m.id) for m in found.matches} == {("lead", lead.pk), ("contact", stored.pk)}


def test_account_rule_needs_more_than_the_name() -> None:
    acme = services.create_account(
        AccountInput(name="Advanced Micro Devices, Inc.", website="https://www.amd.com", city="Santa Clara", postal_code="95054", phone="+1 408 749 4000")
    ).record  # fmt: skip
    assert matched_ids({"name": "AMD"}, "account") == []
    assert matched_ids({"name": "AMD", "website": "amd.com"}, "account") == [acme.pk]
    assert matched_ids(
        {"name": "Advanced Micro Devices", "city": "Santa Clara", "postal_code": "95054"}, "account"
    ) == [acme.pk]
    assert matched_ids({"name": "Intel", "website": "amd.com"}, "account") == []


def test_allow_rule_creates_and_reports_duplicates(api: Api) -> None:
    first = json.loads(api.post("/contacts", ADA).content)
    assert first["duplicates"] == []
    r = api.post("/contacts", {**ADA, "first_name": "A."})
    assert r.status_code == 201
    body = json.loads(r.content)
    assert [d["id"] for d in body["duplicates"]] == [first["id"]]
    assert body["duplicates"][0]["rule"].startswith("mru_")
    assert body["duplicates"][0]["score"] >= 85
    assert Contact.objects.count() == 2


def test_block_rule_refuses_and_writes_nothing(api: Api, admin_api: Api) -> None:
    first = json.loads(api.post("/contacts", ADA).content)
    rule = MatchingRule.objects.get(object="contact", is_standard=True)
    update_rule(rule.pk, RuleChanges(action="block"))
    rules.invalidate()
    before = (Contact.objects.count(), MatchKey.objects.count())
    body = assert_problem(
        api.post("/contacts", {**ADA, "email": "ADA@example.com"}), 409, "duplicate_blocked"
    )
    assert body["matches"] == [
        {
            "object": "contact",
            "id": first["id"],
            "score": body["matches"][0]["score"],
            "rule": rule.pk,
        }
    ]
    assert (Contact.objects.count(), MatchKey.objects.count()) == before
    # A different person still goes through.
    assert api.post("/contacts", {"first_name": "Grace", "last_name": "Hopper"}).status_code == 201


def test_block_rule_applies_on_edit(api: Api) -> None:
    a = contact()
    b = contact(
        first_name="Grace", last_name="Hopper", email="grace@example.com", phone="", street=""
    )
    update_rule(
        MatchingRule.objects.get(object="contact", is_standard=True).pk, RuleChanges(action="block")
    )
    rules.invalidate()
    r = api.send(
        "PATCH",
        f"/contacts/{b.pk}",
        {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
    )
    assert_problem(r, 409, "duplicate_blocked")
    b.refresh_from_db()
    assert b.first_name == "Grace"
    assert a.pk != b.pk


def test_a_record_that_already_had_a_duplicate_can_still_be_edited(api: Api) -> None:
    """Records saved past a block rule (resolved, converted, or older than the rule) stay
    editable; an edit is refused only for a duplicate it creates."""
    a = contact()
    b = services.create_contact(
        ContactInput(**dict(ADA)), check_duplicates=False
    ).record  # Ada, twice
    grace = contact(first_name="Grace", last_name="Hopper", email="grace@example.com",
                    phone="+1 202 555 0101", street="", company="US Navy", title="")  # fmt: skip
    update_rule(
        MatchingRule.objects.get(object="contact", is_standard=True).pk, RuleChanges(action="block")
    )
    rules.invalidate()
    r = api.send("PATCH", f"/contacts/{b.pk}", {"title": "Countess"})
    assert r.status_code == 200, r.content
    b.refresh_from_db()
    assert b.title == "Countess"
    # Making it Grace's duplicate too is new: refused, and nothing changes.
    r = api.send("PATCH", f"/contacts/{b.pk}",
                 {"first_name": "Grace", "last_name": "Hopper", "email": "grace@example.com"})  # fmt: skip
    body = assert_problem(r, 409, "duplicate_blocked")
    assert [m["id"] for m in body["matches"]] == [grace.pk]
    b.refresh_from_db()
    assert b.first_name == "Ada"
    assert a.pk != b.pk


def test_match_keys_follow_edits() -> None:
    stored = contact()
    old_keys = set(MatchKey.objects.filter(object_id=stored.pk).values_list("key", flat=True))
    assert any("ada@example.com" in k for k in old_keys)
    services.update_contact(
        stored.pk, ContactChanges(email="countess@example.org", last_name="King")
    )
    new_keys = set(MatchKey.objects.filter(object_id=stored.pk).values_list("key", flat=True))
    assert not any("ada@example.com" in k for k in new_keys)
    assert any("countess@example.org" in k for k in new_keys)
    assert matched_ids(
        {"first_name": "Ada", "last_name": "King", "email": "countess@example.org"}
    ) == [stored.pk]
    assert matched_ids(only(first_name=True, last_name=True, email=True)) == []


def test_match_endpoint_is_read_only(api: Api) -> None:
    stored = contact()
    before = (Contact.objects.count(), Lead.objects.count(), MatchKey.objects.count())
    r = api.post(
        "/match",
        {
            "object": "contact",
            "record": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
        },
    )
    body = json.loads(r.content)
    assert r.status_code == 200
    assert body["decision"] == "link"
    assert [m["id"] for m in body["matches"]] == [stored.pk]
    assert body["matches"][0]["object"] == "contact"
    none = json.loads(
        api.post("/match", {"object": "contact", "record": {"last_name": "Nobody"}}).content
    )
    assert none["decision"] == "create"
    assert none["matches"] == []
    assert (Contact.objects.count(), Lead.objects.count(), MatchKey.objects.count()) == before


def test_resolve_person_links_or_creates_deterministically() -> None:
    older = contact()
    newer = contact(phone="", street="")  # a duplicate already in the data
    # The older record was active more recently than the newer one.
    Contact.objects.filter(pk=newer.pk).update(
        last_activity_at=older.created_at - timedelta(days=1)
    )
    res = services.resolve_person(
        ContactInput(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    )
    assert not res.created
    assert res.record.pk == older.pk  # same score: the most recently active wins
    assert {m.id for m in res.matches} == {older.pk, newer.pk}

    created = services.resolve_person(
        ContactInput(first_name="Grace", last_name="Hopper", email="g@navy.mil")
    )
    assert created.created
    assert isinstance(created.record, Contact)
    again = services.resolve_person(
        ContactInput(first_name="Grace", last_name="Hopper", email="g@navy.mil")
    )
    assert not again.created
    assert again.record.pk == created.record.pk


def test_resolve_person_under_a_matched_account() -> None:
    acc = services.create_account(AccountInput(name="Contoso Ltd", phone="+44 20 7946 0000")).record
    res = services.resolve_person(
        ContactInput(
            first_name="Jo", last_name="Bloggs", company="Contoso", phone="+44 20 7946 0000"
        )
    )
    assert res.created
    assert res.account is not None
    assert res.account.pk == acc.pk
    assert isinstance(res.record, Contact)
    assert res.record.account_id == acc.pk


def test_custom_rule_on_any_field(api: Api, admin_api: Api) -> None:
    stored = contact(birthdate="1815-12-10")
    r = admin_api.post(
        "/matching-rules",
        {
            "object": "contact",
            "name": "Same last name and birthdate",
            "logic": "1 AND 2",
            "criteria": [
                {"field": "last_name", "method": "last_name", "threshold": 90},
                {"field": "birthdate", "method": "exact", "threshold": 100},
            ],
        },
    )
    assert r.status_code == 201, r.content
    rule = json.loads(r.content)
    assert [c["number"] for c in rule["criteria"]] == [1, 2]
    rules.invalidate()
    rebuild_match_keys("contact")
    found = engine.find_matches("contact", {"last_name": "Lovelace", "birthdate": "1815-12-10"})
    assert [(m.id, m.rule) for m in found.matches] == [(stored.pk, rule["id"])]
    # Switched off through the API, it no longer matches.
    off = admin_api.send("PUT", f"/matching-rules/{rule['id']}", {"active": False})
    assert off.status_code == 200
    assert json.loads(off.content)["active"] is False
    rules.invalidate()
    assert matched_ids({"last_name": "Lovelace", "birthdate": "1815-12-10"}) == []


def test_rule_validation_errors(admin_api: Api, api: Api) -> None:
    base = {
        "object": "contact",
        "name": "x",
        "logic": "1 AND 2",
        "criteria": [
            {"field": "last_name", "method": "last_name", "threshold": 90},
            {"field": "title", "method": "title", "threshold": 50},
        ],
    }
    before = MatchingRule.objects.count()
    assert_problem(
        admin_api.post("/matching-rules", {**base, "logic": "1 AND 3"}), 422, "validation_error"
    )
    assert_problem(
        admin_api.post("/matching-rules", {**base, "logic": "1 OR 2"}), 422, "validation_error"
    )  # 2 alone can't be searched
    for logic_text in ("(" * 490 + "1 AND 2" + ")" * 490, "1 OR NOT 2"):  # too deep; NOT alone
        assert_problem(
            admin_api.post("/matching-rules", {**base, "logic": logic_text}),
            422,
            "validation_error",
        )
    bad_field = {
        **base,
        "criteria": [base["criteria"][0], {"field": "shoe_size", "method": "exact"}],
    }
    assert_problem(admin_api.post("/matching-rules", bad_field), 422, "validation_error")
    assert_problem(
        admin_api.post("/matching-rules", {**base, "criteria": [{"field": "x", "method": "nope"}]}),
        422,
        "validation_error",
    )
    assert_problem(api.post("/matching-rules", base), 403, "forbidden")
    assert MatchingRule.objects.count() == before
    standard = MatchingRule.objects.get(object="contact", is_standard=True)
    assert_problem(admin_api.call("DELETE", f"/matching-rules/{standard.pk}"), 409, "conflict")
    assert_problem(admin_api.call("DELETE", "/matching-rules/mru_nope"), 404, "not_found")


def test_matching_rules_list_is_paginated(api: Api) -> None:
    for i in range(3):
        create_rule(RuleInput(
            object="contact", name=f"Custom {i}", logic="1 AND 2",
            criteria=(CriterionInput("last_name", "last_name", threshold=90),
                      CriterionInput("email", "email", threshold=100)),
        ))  # fmt: skip
    everyone = set(MatchingRule.objects.values_list("pk", flat=True))
    seen: list[str] = []
    cursor = None
    while True:
        query: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = json.loads(api.get("/matching-rules", **query).content)
        assert len(page["items"]) <= 2
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert set(seen) == everyone
    assert_problem(api.get("/matching-rules", limit=0), 422, "validation_error")
    assert_problem(api.get("/matching-rules", limt=2), 422, "validation_error")


def test_a_new_rule_finds_existing_records_as_soon_as_it_is_saved(
    admin_api: Api, django_capture_on_commit_callbacks: Any
) -> None:
    """A small database is re-keyed before the rule change is answered: the new rule
    finds records stored before it, with no background job needed."""
    from django_tasks_db.models import DBTaskResult

    stored = contact(birthdate="1815-12-10")
    probe = {"last_name": "Lovelace", "birthdate": "1815-12-10"}
    assert stored.pk not in matched_ids(probe)
    with django_capture_on_commit_callbacks(execute=True):
        r = admin_api.post("/matching-rules", {
            "object": "contact", "name": "Same last name and birthdate", "logic": "1 AND 2",
            "criteria": [{"field": "last_name", "method": "last_name", "threshold": 90},
                         {"field": "birthdate", "method": "exact", "threshold": 100}],
        })  # fmt: skip
    assert r.status_code == 201, r.content
    assert matched_ids(probe) == [stored.pk]
    assert not DBTaskResult.objects.filter(task_path__endswith="rebuild_match_keys_task").exists()


def test_candidate_limit_is_reported() -> None:
    for i in range(5):
        contact(email=f"ada{i}@example.com", phone=f"+1 415 555 12{i:02d}")
    update_rule(
        MatchingRule.objects.get(object="contact", is_standard=True).pk,
        RuleChanges(candidate_limit=3),
    )
    rules.invalidate()
    result = engine.find_matches(
        "contact",
        {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "company": ADA["company"],
            "title": ADA["title"],
        },
    )
    assert result.limit_reached
    assert result.candidates_examined <= 3 + 5  # contacts capped at 3; leads none


def test_over_the_limit_the_candidates_sharing_most_keys_are_kept() -> None:
    """Eight namesakes share one key with the probe (name + company); the real duplicate
    shares several (email, name + phone, name + company). With a limit of 3 it must be
    among the candidates, whatever order the index returns them in."""
    for i in range(8):
        services.create_contact(
            ContactInput(first_name="Ada", last_name="Lovelace", company=ADA["company"], email=f"namesake{i}@example.com", title=f"Clerk {i}"),
            check_duplicates=False,
        )  # fmt: skip
    real = contact(email="ada.real@example.com")
    update_rule(
        MatchingRule.objects.get(object="contact", is_standard=True).pk,
        RuleChanges(candidate_limit=3),
    )
    rules.invalidate()
    probe = {**ADA, "email": "ada.real@example.com"}
    result = engine.find_matches("contact", probe)
    assert result.limit_reached
    assert real.pk in [m.id for m in result.matches]


def test_admin_name_variants_extend_the_nickname_table() -> None:
    from tessera.crm.matching.models import NameVariant

    stored = contact(first_name="Alexander", email="alex@example.com")
    probe = {"first_name": "Xander", "last_name": "Lovelace", "email": "alex@example.com"}
    assert matched_ids(probe) == []
    NameVariant.objects.create(name="alexander", variant="xander")
    rules.invalidate()
    rebuild_match_keys("contact")
    assert matched_ids(probe) == [stored.pk]
