"""The typed inputs and results of the CRM services.

Callers (the API, the portal, the admin, other apps) build these from what they validated;
the services clean them (trim, fold white space, lower-case the email, a null text field
read as blank), so no caller repeats that work."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any, Generic, TypeVar

from tessera.core.unset import UNSET, Unset
from tessera.crm.matching.engine import Match, MatchResult
from tessera.crm.models import Account, Contact, Lead

R = TypeVar("R", Contact, Lead, Account)


@dataclass(frozen=True)
class ContactInput:
    """A person's details, for a new Contact or Lead, or a person to resolve. None in a text
    field is blank."""

    first_name: str | None = ""
    last_name: str | None = ""
    email: str | None = ""
    phone: str | None = ""
    company: str | None = ""
    title: str | None = ""
    street: str | None = ""
    city: str | None = ""
    postal_code: str | None = ""
    country: str | None = ""
    birthdate: date | None = None
    account_id: str | None = None


LeadInput = ContactInput  # a lead has a contact's fields


@dataclass(frozen=True)
class ContactChanges:
    """An edit of a Contact or Lead: only the fields given change; None clears one."""

    first_name: str | Unset | None = UNSET
    last_name: str | Unset | None = UNSET
    email: str | Unset | None = UNSET
    phone: str | Unset | None = UNSET
    company: str | Unset | None = UNSET
    title: str | Unset | None = UNSET
    street: str | Unset | None = UNSET
    city: str | Unset | None = UNSET
    postal_code: str | Unset | None = UNSET
    country: str | Unset | None = UNSET
    birthdate: date | Unset | None = UNSET
    account_id: str | Unset | None = UNSET


LeadChanges = ContactChanges


@dataclass(frozen=True)
class AccountInput:
    """An organisation's details, for a new Account. None in a text field is blank."""

    name: str | None = ""
    website: str | None = ""
    phone: str | None = ""
    street: str | None = ""
    city: str | None = ""
    postal_code: str | None = ""
    country: str | None = ""


@dataclass(frozen=True)
class AccountChanges:
    """An edit of an Account: only the fields given change; None clears one."""

    name: str | Unset | None = UNSET
    website: str | Unset | None = UNSET
    phone: str | Unset | None = UNSET
    street: str | Unset | None = UNSET
    city: str | Unset | None = UNSET
    postal_code: str | Unset | None = UNSET
    country: str | Unset | None = UNSET


def given(value: ContactInput | ContactChanges | AccountInput | AccountChanges) -> dict[str, Any]:
    """An input's or a change's fields by name, without those a change leaves as they are."""
    return {f.name: v for f in fields(value) if (v := getattr(value, f.name)) is not UNSET}


@dataclass(frozen=True)
class FieldWeight:
    """Probabilistic mode: how one field compared, and the evidence it gave."""

    field: str
    level: str
    weight: float


@dataclass(frozen=True)
class MatchSummary:
    """A match as callers show it: the record, its score and the rule that found it."""

    object: str
    id: str
    score: int
    rule: str
    match_probability: float | None = None
    weights: tuple[FieldWeight, ...] | None = None

    @classmethod
    def of(cls, m: Match) -> MatchSummary:
        if m.probability is None:
            return cls(m.object, m.id, m.score, m.rule)
        weights = tuple(
            FieldWeight(name, s.level, round(s.weight, 3)) for name, s in (m.weights or {}).items()
        )
        return cls(m.object, m.id, m.score, m.rule, round(m.probability, 6), weights)


@dataclass(frozen=True)
class Saved(Generic[R]):
    """A created or edited record, with the duplicates an ``allow`` rule reported."""

    record: R
    duplicates: list[Match] = field(default_factory=list)

    @property
    def summaries(self) -> list[MatchSummary]:
        return [MatchSummary.of(m) for m in self.duplicates]


@dataclass(frozen=True)
class Resolution:
    """Who an incoming person is: an existing Contact or Lead, or a new Contact (linked to
    a matched Account when only the organisation was known)."""

    record: Contact | Lead
    created: bool
    matches: list[Match]
    account: Account | None = None

    @property
    def object(self) -> str:
        return "lead" if isinstance(self.record, Lead) else "contact"


@dataclass(frozen=True)
class PersonSearch:
    """A page of contacts or leads, newest first, those with ``email`` only if given (in
    any case)."""

    email: str | None = None
    limit: int | None = None
    cursor: str | None = None


@dataclass(frozen=True)
class TimelineQuery:
    """A page of one contact's timeline, newest first."""

    contact_id: str
    limit: int | None = None
    cursor: str | None = None


@dataclass(frozen=True)
class MatchQuery:
    """An incoming record to look up: a person's fields, or an account's (name, website,
    phone and address). None is a field not given."""

    object: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    company: str | None = None
    title: str | None = None
    street: str | None = None
    city: str | None = None
    postal_code: str | None = None
    country: str | None = None
    birthdate: date | None = None
    name: str | None = None
    website: str | None = None


@dataclass(frozen=True)
class MatchReport:
    """The records an incoming one matches, best first, and how far the search looked."""

    matches: list[MatchSummary]
    decision: str
    candidates_examined: int
    candidate_limit_reached: bool

    @classmethod
    def of(cls, result: MatchResult) -> MatchReport:
        return cls(
            [MatchSummary.of(m) for m in result.matches],
            result.decision,
            result.candidates_examined,
            result.limit_reached,
        )


@dataclass(frozen=True)
class NewContacts:
    """Contacts a bulk caller (the CSV import) built and matched, with each one's match
    keys by id; the summary goes on each one's timeline."""

    contacts: list[Contact]
    keys: dict[str, set[str]]
    summary: str = "Contact created"
