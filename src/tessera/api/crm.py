"""CRM endpoints: thin: validate, call a service, render."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.db.models.functions import Lower
from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from tessera.api.auth import read_auth, write_auth
from tessera.api.schemas import (
    ERRORS,
    Email,
    Input,
    IsoDate,
    NonBlank,
    PageOut,
    PageQuery,
    Text,
    reject_unknown_query,
)
from tessera.core.pagination import paginate
from tessera.crm import services
from tessera.crm.models import Account, Contact, Lead, TimelineEntry
from tessera.crm.services import Saved, match_summary

router = Router(tags=["CRM"])


class PersonIn(Input):
    first_name: Text = Field("", max_length=120)
    last_name: NonBlank = Field(..., max_length=120)
    email: Email | None = None
    phone: Text = Field("", max_length=40)
    company: Text = Field("", max_length=255)
    title: Text = Field("", max_length=128)
    street: Text = Field("", max_length=255)
    city: Text = Field("", max_length=120)
    postal_code: Text = Field("", max_length=32)
    country: Text = Field("", max_length=80)
    birthdate: IsoDate | None = None
    account_id: Text | None = Field(None, max_length=40)


class PersonOut(Schema):
    id: str
    first_name: str
    last_name: str
    email: str
    phone: str
    phone_e164: str
    company: str
    title: str
    street: str
    city: str
    postal_code: str
    country: str
    birthdate: date | None
    account_id: str | None
    created_at: datetime
    updated_at: datetime


class PersonPatch(Input):
    first_name: Text | None = Field(None, max_length=120)
    last_name: NonBlank | None = Field(None, max_length=120)
    email: Email | None = None
    phone: Text | None = Field(None, max_length=40)
    company: Text | None = Field(None, max_length=255)
    title: Text | None = Field(None, max_length=128)
    street: Text | None = Field(None, max_length=255)
    city: Text | None = Field(None, max_length=120)
    postal_code: Text | None = Field(None, max_length=32)
    country: Text | None = Field(None, max_length=80)
    birthdate: IsoDate | None = None
    account_id: Text | None = Field(None, max_length=40)


class DuplicateOut(Schema):
    object: str
    id: str
    score: int
    rule: str


class AccountIn(Input):
    name: NonBlank = Field(..., max_length=255)
    website: Text = Field("", max_length=255)
    phone: Text = Field("", max_length=40)
    street: Text = Field("", max_length=255)
    city: Text = Field("", max_length=120)
    postal_code: Text = Field("", max_length=32)
    country: Text = Field("", max_length=80)


class PersonSavedOut(PersonOut):
    duplicates: list[DuplicateOut] = Field(
        default_factory=list, description="Existing records an `allow` rule found similar"
    )


class AccountPatch(Input):
    name: NonBlank | None = Field(None, max_length=255)
    website: Text | None = Field(None, max_length=255)
    phone: Text | None = Field(None, max_length=40)
    street: Text | None = Field(None, max_length=255)
    city: Text | None = Field(None, max_length=120)
    postal_code: Text | None = Field(None, max_length=32)
    country: Text | None = Field(None, max_length=80)


class AccountOut(Schema):
    id: str
    name: str
    website: str
    phone: str
    phone_e164: str
    street: str
    city: str
    postal_code: str
    country: str
    created_at: datetime
    updated_at: datetime


class AccountSavedOut(AccountOut):
    duplicates: list[DuplicateOut] = Field(default_factory=list)


class TimelineOut(Schema):
    id: str
    kind: str
    object_type: str
    object_id: str
    summary: str
    data: dict[str, Any]
    occurred_at: datetime


class ListQuery(PageQuery):
    email: Text | None = Field(None, max_length=254)


def _person_data(payload: PersonIn) -> dict[str, Any]:
    data = payload.model_dump()
    data["email"] = data["email"] or ""
    return data


def _saved(saved: Saved[Any]) -> Any:
    record = saved.record
    record.duplicates = [match_summary(m) for m in saved.duplicates]
    return record


def _patch(payload: PersonPatch | AccountPatch) -> dict[str, Any]:
    # Only what was sent changes; an explicit null clears a text field.
    data = payload.model_dump(exclude_unset=True)
    return {
        k: ("" if v is None and k not in {"birthdate", "account_id"} else v)
        for k, v in data.items()
    }


def _email_filter(qs: Any, email: str | None) -> Any:
    if email:
        return qs.annotate(email_lower=Lower("email")).filter(email_lower=email.strip().lower())
    return qs


@router.post("/contacts", response={201: PersonSavedOut, **ERRORS}, auth=write_auth)
def create_contact(request: HttpRequest, payload: PersonIn) -> Status:
    """Create a contact. Active duplicate rules run first: a `block` rule answers 409
    `duplicate_blocked` with the matches; an `allow` rule creates and lists `duplicates`."""
    return Status(201, _saved(services.create_contact(_person_data(payload))))


@router.patch("/contacts/{contact_id}", response={200: PersonSavedOut, **ERRORS}, auth=write_auth)
def update_contact(request: HttpRequest, contact_id: str, payload: PersonPatch) -> Any:
    return _saved(services.update_contact(contact_id, _patch(payload)))


@router.get("/contacts", response={200: PageOut[PersonOut], **ERRORS}, auth=read_auth)
def list_contacts(request: HttpRequest, q: Query[ListQuery]) -> Any:
    reject_unknown_query(request, ListQuery)
    return paginate(_email_filter(Contact.objects.all(), q.email), limit=q.limit, cursor=q.cursor)


@router.get("/contacts/{contact_id}", response={200: PersonOut, **ERRORS}, auth=read_auth)
def get_contact(request: HttpRequest, contact_id: str) -> Contact:
    return services.get_contact(contact_id)


@router.get(
    "/contacts/{contact_id}/timeline",
    response={200: PageOut[TimelineOut], **ERRORS},
    auth=read_auth,
)
def contact_timeline(request: HttpRequest, contact_id: str, q: Query[PageQuery]) -> Any:
    reject_unknown_query(request, PageQuery)
    contact = services.get_contact(contact_id)
    entries = TimelineEntry.objects.filter(contact=contact)
    return paginate(entries, limit=q.limit, cursor=q.cursor)


@router.post("/leads", response={201: PersonSavedOut, **ERRORS}, auth=write_auth)
def create_lead(request: HttpRequest, payload: PersonIn) -> Status:
    return Status(201, _saved(services.create_lead(_person_data(payload))))


@router.patch("/leads/{lead_id}", response={200: PersonSavedOut, **ERRORS}, auth=write_auth)
def update_lead(request: HttpRequest, lead_id: str, payload: PersonPatch) -> Any:
    return _saved(services.update_lead(lead_id, _patch(payload)))


@router.get("/leads", response={200: PageOut[PersonOut], **ERRORS}, auth=read_auth)
def list_leads(request: HttpRequest, q: Query[ListQuery]) -> Any:
    reject_unknown_query(request, ListQuery)
    return paginate(_email_filter(Lead.objects.all(), q.email), limit=q.limit, cursor=q.cursor)


@router.get("/leads/{lead_id}", response={200: PersonOut, **ERRORS}, auth=read_auth)
def get_lead(request: HttpRequest, lead_id: str) -> Lead:
    return services.get_lead(lead_id)


@router.post("/accounts", response={201: AccountSavedOut, **ERRORS}, auth=write_auth)
def create_account(request: HttpRequest, payload: AccountIn) -> Status:
    return Status(201, _saved(services.create_account(payload.model_dump())))


@router.patch("/accounts/{account_id}", response={200: AccountSavedOut, **ERRORS}, auth=write_auth)
def update_account(request: HttpRequest, account_id: str, payload: AccountPatch) -> Any:
    return _saved(services.update_account(account_id, _patch(payload)))


@router.get("/accounts", response={200: PageOut[AccountOut], **ERRORS}, auth=read_auth)
def list_accounts(request: HttpRequest, q: Query[PageQuery]) -> Any:
    reject_unknown_query(request, PageQuery)
    return paginate(Account.objects.all(), limit=q.limit, cursor=q.cursor)


@router.get("/accounts/{account_id}", response={200: AccountOut, **ERRORS}, auth=read_auth)
def get_account(request: HttpRequest, account_id: str) -> Account:
    return services.get_account(account_id)
