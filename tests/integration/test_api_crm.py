from __future__ import annotations

import json
from typing import Any

import pytest

from tessera.crm.models import Account, Contact, Lead, TimelineEntry
from tests.support.api import Api


def body(response) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(response.content)


@pytest.fixture
def northwind(api: Api) -> dict[str, Any]:
    return body(api.post("/accounts", {"name": "Northwind", "city": "Seattle"}))


def create_ada(api: Api, account: dict[str, Any]) -> Any:
    return api.post(
        "/contacts",
        {
            "first_name": "  Ada ",
            "last_name": "Lovelace",
            "email": "Ada@Example.COM",
            "phone": "+1 206 555 0100",
            "birthdate": "1815-12-10",
            "account_id": account["id"],
        },
    )


def test_a_created_contact_is_answered_trimmed_and_normalised(
    api: Api, northwind: dict[str, Any]
) -> None:
    r = create_ada(api, northwind)
    assert r.status_code == 201, r.content
    created = body(r)
    assert created["id"].startswith("con_")
    assert created["first_name"] == "Ada"  # trimmed
    assert created["email"] == "ada@example.com"  # normalised
    assert created["account_id"] == northwind["id"]
    assert created["birthdate"] == "1815-12-10"


def test_a_created_contact_reads_back_as_created(api: Api, northwind: dict[str, Any]) -> None:
    created = body(create_ada(api, northwind))
    fetched = body(api.get(f"/contacts/{created['id']}"))
    assert fetched == {k: v for k, v in created.items() if k != "duplicates"}


def test_a_created_contact_is_stored_under_its_account(api: Api, northwind: dict[str, Any]) -> None:
    created = body(create_ada(api, northwind))
    assert Contact.objects.get(pk=created["id"]).account_id == northwind["id"]


def test_filter_by_email_is_case_insensitive(api: Api) -> None:
    api.post("/contacts", {"last_name": "A", "email": "one@example.com"})
    api.post("/contacts", {"last_name": "B", "email": "two@example.com"})
    page = body(api.get("/contacts", email="ONE@example.com"))
    assert [c["last_name"] for c in page["items"]] == ["A"]
    assert page["next_cursor"] is None


def test_cursor_pagination_walks_every_record_once(api: Api) -> None:
    ids = [body(api.post("/contacts", {"last_name": f"P{i}"}))["id"] for i in range(7)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = body(api.get("/contacts", **params))
        seen += [c["id"] for c in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(ids))  # newest first, no repeats, nothing missed


def test_a_created_lead_reads_back(api: Api) -> None:
    lead = api.post("/leads", {"first_name": "Mo", "last_name": "Farah", "company": "Run Ltd"})
    assert lead.status_code == 201
    lead_id = body(lead)["id"]
    assert lead_id.startswith("lea_")
    assert body(api.get(f"/leads/{lead_id}"))["company"] == "Run Ltd"
    assert Lead.objects.count() == 1


def test_a_created_lead_is_listed(api: Api) -> None:
    lead_id = body(api.post("/leads", {"first_name": "Mo", "last_name": "Farah"}))["id"]
    assert [x["id"] for x in body(api.get("/leads"))["items"]] == [lead_id]


def test_a_created_account_reads_back(api: Api) -> None:
    acc = api.post("/accounts", {"name": "Globex", "website": "globex.example"})
    assert acc.status_code == 201
    acc_id = body(acc)["id"]
    assert body(api.get(f"/accounts/{acc_id}"))["website"] == "globex.example"
    assert Account.objects.count() == 1


def test_timeline_lists_what_touched_the_contact_newest_first(api: Api) -> None:
    from tessera.crm.services import get_contact, record_timeline

    contact_id = body(api.post("/contacts", {"last_name": "Hopper"}))["id"]
    contact = get_contact(contact_id)
    record_timeline(contact, kind="note", obj=contact, summary="Called about the summit")
    items = body(api.get(f"/contacts/{contact_id}/timeline"))["items"]
    assert [i["kind"] for i in items] == ["note", "contact_created"]
    assert items[1]["object_id"] == contact_id
    assert TimelineEntry.objects.filter(contact_id=contact_id).count() == 2
    contact.refresh_from_db()
    assert contact.last_activity_at is not None


def test_the_home_page_sends_a_visitor_to_sign_in_with_the_api_and_admin_linked(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/", follow=True)
    html = r.content.decode()
    assert r.redirect_chain == [("/signin?next=/", 302)]
    assert "Sign in" in html
    assert 'href="/api/v1/docs"' in html
    assert 'href="/admin/"' in html


def test_openapi_document_describes_the_api(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/api/v1/openapi.json")
    doc = json.loads(r.content)
    assert r.status_code == 200
    assert doc["openapi"].startswith("3.1")
    assert {"/api/v1/contacts", "/api/v1/contacts/{contact_id}/timeline"} <= set(doc["paths"])
    assert client.get("/api/v1/docs").status_code == 200
