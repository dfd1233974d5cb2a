"""CRM endpoints: thin: validate, call a service, render."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

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
from tessera.crm import search, services
from tessera.crm.inputs import (
    AccountChanges,
    AccountInput,
    ContactChanges,
    ContactInput,
    PersonSearch,
    Saved,
    TimelineQuery,
)
from tessera.crm.models import Account, Contact, Lead

router = Router(tags=["CRM"])

# A person's and an organisation's fields, each as long as the column that stores it: the
# create, edit and match bodies all read them so.
PersonName = Annotated[Text, Field(max_length=120)]
FirstName = PersonName
LastName = Annotated[NonBlank, Field(max_length=120)]
Phone = Annotated[Text, Field(max_length=40)]
Company = Annotated[Text, Field(max_length=255)]
JobTitle = Annotated[Text, Field(max_length=128)]
Street = Annotated[Text, Field(max_length=255)]
City = Annotated[Text, Field(max_length=120)]
PostalCode = Annotated[Text, Field(max_length=32)]
Country = Annotated[Text, Field(max_length=80)]
AccountId = Annotated[Text, Field(max_length=40)]
AccountName = Annotated[NonBlank, Field(max_length=255)]
Website = Annotated[Text, Field(max_length=255)]


class PersonIn(Input):
    first_name: FirstName = ""
    last_name: LastName
    email: Email | None = None
    phone: Phone = ""
    company: Company = ""
    title: JobTitle = ""
    street: Street = ""
    city: City = ""
    postal_code: PostalCode = ""
    country: Country = ""
    birthdate: IsoDate | None = None
    account_id: AccountId | None = None

    def as_input(self) -> ContactInput:
        return ContactInput(**self.model_dump())


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


class PersonFieldsPatch(Input):
    """A person's fields, each optional. An edit and a match lookup read them so; an edit
    redeclares the name and email it requires in their stricter forms (a field redeclared
    keeps its place in the body)."""

    first_name: FirstName | None = None
    last_name: PersonName | None = None
    email: Text | None = Field(None, max_length=254)
    phone: Phone | None = None
    company: Company | None = None
    title: JobTitle | None = None
    street: Street | None = None
    city: City | None = None
    postal_code: PostalCode | None = None
    country: Country | None = None
    birthdate: IsoDate | None = None


class PersonPatch(PersonFieldsPatch):
    last_name: LastName | None = None
    email: Email | None = None
    account_id: AccountId | None = None

    def as_changes(self) -> ContactChanges:
        # Only what was sent changes; an explicit null clears a text field.
        return ContactChanges(**self.model_dump(exclude_unset=True))


class DuplicateOut(Schema):
    object: str
    id: str
    score: int
    rule: str


class AccountIn(Input):
    name: AccountName
    website: Website = ""
    phone: Phone = ""
    street: Street = ""
    city: City = ""
    postal_code: PostalCode = ""
    country: Country = ""

    def as_input(self) -> AccountInput:
        return AccountInput(**self.model_dump())


class PersonSavedOut(PersonOut):
    duplicates: list[DuplicateOut] = Field(
        default_factory=list, description="Existing records an `allow` rule found similar"
    )


class AccountPatch(Input):
    name: AccountName | None = None
    website: Website | None = None
    phone: Phone | None = None
    street: Street | None = None
    city: City | None = None
    postal_code: PostalCode | None = None
    country: Country | None = None

    def as_changes(self) -> AccountChanges:
        return AccountChanges(**self.model_dump(exclude_unset=True))


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

    def as_search(self) -> PersonSearch:
        return PersonSearch(self.email, self.limit, self.cursor)


def _saved(saved: Saved[Any]) -> Any:
    """The record as the API answers it, with the duplicates an ``allow`` rule found."""
    record = saved.record
    record.duplicates = saved.summaries
    return record


@router.post("/contacts", response={201: PersonSavedOut, **ERRORS}, auth=write_auth)
def create_contact(request: HttpRequest, payload: PersonIn) -> Status:
    """Create a contact. Active duplicate rules run first: a `block` rule answers 409
    `duplicate_blocked` with the matches; an `allow` rule creates and lists `duplicates`."""
    return Status(201, _saved(services.create_contact(payload.as_input())))


@router.patch("/contacts/{contact_id}", response={200: PersonSavedOut, **ERRORS}, auth=write_auth)
def update_contact(request: HttpRequest, contact_id: str, payload: PersonPatch) -> Any:
    return _saved(services.update_contact(contact_id, payload.as_changes()))


@router.get("/contacts", response={200: PageOut[PersonOut], **ERRORS}, auth=read_auth)
def list_contacts(request: HttpRequest, q: Query[ListQuery]) -> Any:
    reject_unknown_query(request, ListQuery)
    return search.search_contacts(q.as_search())


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
    return search.contact_timeline(TimelineQuery(contact_id, q.limit, q.cursor))


@router.post("/leads", response={201: PersonSavedOut, **ERRORS}, auth=write_auth)
def create_lead(request: HttpRequest, payload: PersonIn) -> Status:
    return Status(201, _saved(services.create_lead(payload.as_input())))


@router.patch("/leads/{lead_id}", response={200: PersonSavedOut, **ERRORS}, auth=write_auth)
def update_lead(request: HttpRequest, lead_id: str, payload: PersonPatch) -> Any:
    return _saved(services.update_lead(lead_id, payload.as_changes()))


@router.get("/leads", response={200: PageOut[PersonOut], **ERRORS}, auth=read_auth)
def list_leads(request: HttpRequest, q: Query[ListQuery]) -> Any:
    reject_unknown_query(request, ListQuery)
    return search.search_leads(q.as_search())


@router.get("/leads/{lead_id}", response={200: PersonOut, **ERRORS}, auth=read_auth)
def get_lead(request: HttpRequest, lead_id: str) -> Lead:
    return services.get_lead(lead_id)


@router.post("/accounts", response={201: AccountSavedOut, **ERRORS}, auth=write_auth)
def create_account(request: HttpRequest, payload: AccountIn) -> Status:
    return Status(201, _saved(services.create_account(payload.as_input())))


@router.patch("/accounts/{account_id}", response={200: AccountSavedOut, **ERRORS}, auth=write_auth)
def update_account(request: HttpRequest, account_id: str, payload: AccountPatch) -> Any:
    return _saved(services.update_account(account_id, payload.as_changes()))


@router.get("/accounts", response={200: PageOut[AccountOut], **ERRORS}, auth=read_auth)
def list_accounts(request: HttpRequest, q: Query[PageQuery]) -> Any:
    reject_unknown_query(request, PageQuery)
    return paginate(Account.objects.all(), limit=q.limit, cursor=q.cursor)


@router.get("/accounts/{account_id}", response={200: AccountOut, **ERRORS}, auth=read_auth)
def get_account(request: HttpRequest, account_id: str) -> Account:
    return services.get_account(account_id)
