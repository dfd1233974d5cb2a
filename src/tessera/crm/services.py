"""CRM services: the only way people and organisations are created or changed, so every
create and edit runs the duplicate rules and keeps match keys and the timeline current."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, TypeVar

from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from tessera.core.bulk import insert_objects
from tessera.core.errors import ProblemError, ValidationFailed, validate_model
from tessera.core.locking import advisory_lock
from tessera.core.lookup import get_by_id
from tessera.crm.inputs import (
    AccountChanges,
    AccountInput,
    ContactChanges,
    ContactInput,
    LeadChanges,
    LeadInput,
    MatchSummary,
    NewContacts,
    Resolution,
    Saved,
    given,
)
from tessera.crm.lock_objects import contact_row_free, lock_account, lock_contact, lock_lead
from tessera.crm.matching import engine
from tessera.crm.matching.engine import Match, MatchResult
from tessera.crm.matching.keys import lock_names, lookup_keys
from tessera.crm.matching.rules import active_rules
from tessera.crm.matching.values import record_phone_e164
from tessera.crm.models import Account, Contact, Lead, TimelineEntry

PERSON_FIELDS = (
    "first_name", "last_name", "email", "phone", "company", "title",
    "street", "city", "postal_code", "country", "birthdate",
)  # fmt: skip
ACTIVITY_RESOLUTION = timedelta(seconds=60)
ACCOUNT_FIELDS = ("name", "website", "phone", "street", "city", "postal_code", "country")
OBJECT_TYPES: dict[type[Model], str] = {Contact: "contact", Lead: "lead", Account: "account"}

R = TypeVar("R", Contact, Lead, Account)
P = TypeVar("P", Contact, Lead)


class DuplicateBlocked(ProblemError):
    status = 409
    code = "duplicate_blocked"
    title = "A matching record already exists"


def match_summary(m: Match) -> MatchSummary:
    return MatchSummary.of(m)


def _problem_match(m: Match) -> dict[str, object]:
    """A match as a 409's body lists it: the probabilistic parts only when there are any."""
    s = MatchSummary.of(m)
    out: dict[str, object] = {"object": s.object, "id": s.id, "score": s.score, "rule": s.rule}
    if s.match_probability is not None:
        out["match_probability"] = s.match_probability
        out["weights"] = [
            {"field": w.field, "level": w.level, "weight": w.weight} for w in s.weights or ()
        ]
    return out


def _clean_text(data: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The given fields trimmed, white space folded, the email lower-cased, and a null text
    field blank (a null birthdate stays null: no date)."""
    out: dict[str, Any] = {}
    for name in fields:
        if name not in data:
            continue
        value = data[name]
        if isinstance(value, str):
            value = " ".join(value.split())  # trim and fold runs of white space
        out[name] = value if value is not None else ("" if name != "birthdate" else None)
    if isinstance(out.get("email"), str):
        out["email"] = out["email"].lower()
    return out


def _account_or_error(account_id: str | None) -> Account | None:
    if not account_id:
        return None
    # A reference to a record that does not exist: 404, naming the field.
    errors = [{"field": "account_id", "message": f"no account {account_id}"}]
    return get_by_id(Account, account_id, "account", errors=errors)


def record_timeline(
    contact: Contact,
    *,
    kind: str,
    obj: Model,
    summary: str,
    data: Mapping[str, object] | None = None,
) -> TimelineEntry:
    """Add ``obj`` to the contact's timeline (``data``: the entry's JSON) and mark the
    contact as active now."""
    now = timezone.now()
    entry = TimelineEntry.objects.create(
        contact=contact,
        kind=kind,
        object_type=obj._meta.model_name or type(obj).__name__.lower(),
        object_id=str(obj.pk),
        summary=summary[:255],
        data=dict(data or {}),
        occurred_at=now,
    )
    # Minute resolution is plenty to rank "most recently active", and skipping the write
    # keeps a busy member's contact row from becoming a hot spot.
    if contact.last_activity_at is None or now - contact.last_activity_at > ACTIVITY_RESOLUTION:
        if _contact_row_free(contact):
            Contact.objects.filter(pk=contact.pk).update(last_activity_at=now)
        contact.last_activity_at = now
    return entry


def _contact_row_free(contact: Contact) -> bool:
    """Whether we may mark the contact active without waiting for its row.

    Callers reach here holding other locks (a wallet, an item's counter) in their own order,
    so waiting for a contact row another transaction holds can close a cycle: the soak saw
    an order (wallet, then contact) deadlock against a payment settling for the same member
    (contact, then wallet). Skipping costs at most this activity's mark on a minute-grained
    ranking field (the timeline entry itself is written), and the transaction holding the
    row is most often marking the contact active itself. Outside a transaction the UPDATE
    alone is atomic."""
    if not transaction.get_connection().in_atomic_block:
        return True
    return contact_row_free(contact.pk)


@transaction.atomic(savepoint=False)  # the caller's transaction: the CSV import's chunk
def create_contacts_in_bulk(new: NewContacts) -> list[Contact]:
    """Insert contacts built and matched elsewhere (their keys already computed), with
    their match keys, their timeline entries and their activity mark, a few statements
    for the lot: what ``create_contact`` records for one, without a statement per row."""
    contacts = new.contacts
    if not contacts:
        return contacts
    now = timezone.now()
    for contact in contacts:
        contact.last_activity_at = now  # created is active, as create_contact marks it
    insert_objects(contacts)
    engine.store_keys("contact", {c.pk: new.keys[c.pk] for c in contacts})
    insert_objects(
        [
            TimelineEntry(
                contact=c, kind="contact_created", object_type="contact", object_id=c.pk,
                summary=new.summary[:255], data={}, occurred_at=now,
            )
            for c in contacts
        ]
    )  # fmt: skip
    return contacts


def _lock_and_match(
    object_type: str, values: dict[str, Any], exclude_id: str | None
) -> MatchResult:
    """Serialise work on the same person, then look for duplicates.

    Two requests creating the same new person at once would both find no match and both
    create; locking the record's match keys first makes the second one see the first."""
    keys: set[str] = set()
    for target in engine.TARGETS[object_type]:
        # The keys it asks for and the keys it will hold: an acronym asks under another
        # prefix than it is stored under, and either of two creates may be the acronym.
        asked, own = lookup_keys(
            active_rules(target), engine.as_target(object_type, target, values)
        )
        keys |= asked | own
    advisory_lock(lock_names(keys))
    return engine.find_matches(object_type, values, exclude_id=exclude_id)


def _check_duplicates(
    result: MatchResult, tolerated: frozenset[tuple[str, str]] = frozenset()
) -> list[Match]:
    blocking = [m for m in result.blocking if (m.object, m.id) not in tolerated]
    if blocking:
        raise DuplicateBlocked(
            f"Blocked by matching rule {blocking[0].rule_name!r}: "
            f"{len(blocking)} existing record(s) match.",
            matches=[_problem_match(m) for m in blocking],
        )
    return result.matches


def _save(
    obj: R,
    object_type: str,
    *,
    exclude: list[str],
    check: bool,
    tolerated: frozenset[tuple[str, str]] = frozenset(),
) -> list[Match]:
    """Validate, check for duplicates (a ``block`` rule refuses, except for the matches in
    ``tolerated``), save and re-key."""
    obj.phone_e164 = record_phone_e164(obj.phone, obj.country)  # the phone as typed stays
    validate_model(obj, exclude=exclude)
    values = engine.record_values(obj)
    duplicates: list[Match] = []
    if check:
        duplicates = _check_duplicates(
            _lock_and_match(object_type, values, exclude_id=None if obj._state.adding else obj.pk),
            tolerated,
        )
    adding = obj._state.adding
    obj.save(force_insert=adding)
    engine.index_record(object_type, obj, new=adding)
    return duplicates


def _new_person(model: type[P], data: ContactInput) -> P:
    fields = _clean_text(given(data), PERSON_FIELDS)
    if not fields.get("last_name"):
        raise ValidationFailed.field("last_name", "is required")
    return model(**fields, account=_account_or_error(data.account_id))


@transaction.atomic(savepoint=False)  # callers that need one take it
def create_contact(data: ContactInput, *, check_duplicates: bool = True) -> Saved[Contact]:
    contact = _new_person(Contact, data)
    contact.last_activity_at = timezone.now()  # created is active: no second write for it
    duplicates = _save(contact, "contact", exclude=["id", "account"], check=check_duplicates)
    record_timeline(contact, kind="contact_created", obj=contact, summary="Contact created")
    return Saved(contact, duplicates)


@transaction.atomic(savepoint=False)  # callers that need one take it
def create_lead(data: LeadInput, *, check_duplicates: bool = True) -> Saved[Lead]:
    lead = _new_person(Lead, data)
    duplicates = _save(lead, "lead", exclude=["id", "account"], check=check_duplicates)
    return Saved(lead, duplicates)


@transaction.atomic(savepoint=False)  # callers that need one take it
def create_account(data: AccountInput, *, check_duplicates: bool = True) -> Saved[Account]:
    fields = _clean_text(given(data), ACCOUNT_FIELDS)
    if not fields.get("name"):
        raise ValidationFailed.field("name", "is required")
    account = Account(**fields)
    duplicates = _save(account, "account", exclude=["id"], check=check_duplicates)
    return Saved(account, duplicates)


def _blocking_already(object_type: str, obj: R) -> frozenset[tuple[str, str]]:
    """The duplicates a block rule finds for the record as it is. They were there before
    the edit (it was linked or converted past a block rule, or the rule came later), so
    they do not block it; only an edit making a new one does."""
    blocks = any(r.action == "block" for t in engine.TARGETS[object_type] for r in active_rules(t))
    if not blocks:  # without a block rule nothing can be refused: no need to look
        return frozenset()
    found = engine.find_matches(object_type, engine.record_values(obj), exclude_id=obj.pk)
    return frozenset((m.object, m.id) for m in found.blocking)


def _update(
    obj: R,
    object_type: str,
    changes: ContactChanges | AccountChanges,
    fields: tuple[str, ...],
    check: bool,
) -> Saved[R]:
    """Apply ``changes`` to the locked ``obj`` and save it (see ``_save``)."""
    already = _blocking_already(object_type, obj) if check else frozenset()
    data = given(changes)
    cleaned = _clean_text(data, fields)
    for required in ("last_name", "name"):
        if required in cleaned and not cleaned[required]:
            raise ValidationFailed.field(required, "is required")
    for name, value in cleaned.items():
        setattr(obj, name, value)
    if "account_id" in data and not isinstance(obj, Account):
        obj.account = _account_or_error(data["account_id"])
    duplicates = _save(obj, object_type, exclude=["id", "account"], check=check, tolerated=already)
    return Saved(obj, duplicates)


@transaction.atomic(savepoint=False)  # callers that need one take it
def update_contact(
    contact_id: str, changes: ContactChanges, *, check_duplicates: bool = True
) -> Saved[Contact]:
    get_contact(contact_id)  # 404 before locking
    contact = lock_contact(contact_id)
    saved = _update(contact, "contact", changes, PERSON_FIELDS, check_duplicates)
    record_timeline(
        saved.record, kind="contact_updated", obj=saved.record, summary="Contact updated"
    )
    return saved


@transaction.atomic(savepoint=False)
def set_email_opt_out(contact_id: str, opted_out: bool) -> Contact:
    """The person's choice about reminder emails, on their contact's timeline."""
    get_contact(contact_id)
    contact = lock_contact(contact_id)
    if contact.email_opt_out != opted_out:
        contact.email_opt_out = opted_out
        contact.save(update_fields=["email_opt_out", "updated_at"])
        record_timeline(
            contact, kind="contact_updated", obj=contact,
            summary="Opted out of reminder emails" if opted_out else "Opted in to reminder emails",
        )  # fmt: skip
    return contact


@transaction.atomic(savepoint=False)  # callers that need one take it
def update_lead(
    lead_id: str, changes: LeadChanges, *, check_duplicates: bool = True
) -> Saved[Lead]:
    get_lead(lead_id)  # 404 before locking
    return _update(lock_lead(lead_id), "lead", changes, PERSON_FIELDS, check_duplicates)


@transaction.atomic(savepoint=False)  # callers that need one take it
def update_account(
    account_id: str, changes: AccountChanges, *, check_duplicates: bool = True
) -> Saved[Account]:
    get_account(account_id)  # 404 before locking
    account = lock_account(account_id)
    return _update(account, "account", changes, ACCOUNT_FIELDS, check_duplicates)


def best_person(matches: list[Match], email: str | None) -> Contact | Lead:
    """The record a person is, among the matches found for them.

    An email is an identifier, a name only a resemblance: a record with the same email
    wins over any fuzzy match, however recent ("Bobby Johnson" with Robert Johnson's
    email is Robert Johnson, not the newer Lead "Rob Johnson"). Then a Contact wins over a
    Lead, since a Lead chosen would be converted into a second contact for someone who
    has one. Ties keep the engine's order: score, most recently active, id."""
    wanted = (email or "").strip().lower()

    def key(m: Match) -> tuple[bool, bool]:
        same_email = bool(wanted) and str(getattr(m.record, "email", "")).lower() == wanted
        return (not same_email, m.object != "contact")

    best = sorted(matches, key=key)[0].record  # sorted() is stable: engine order breaks ties
    if not isinstance(best, Contact | Lead):
        raise TypeError("person matching returned a non-person")
    return best


@transaction.atomic(savepoint=False)  # callers that need one take it
def resolve_person(person: ContactInput) -> Resolution:
    """The Contact or Lead this person already is, or a new Contact.

    Among several matches the choice is deterministic (``best_person``): a record with the
    same email first, a Contact before a Lead, then highest score, most recently active,
    lowest id. With no person match but a matching Account (by company and
    address, phone or website), the new Contact is created under that Account. Block rules
    do not apply: resolving never refuses a person, it finds or creates one."""
    values = _clean_text(given(person), PERSON_FIELDS)
    if not values.get("last_name"):
        raise ValidationFailed.field("last_name", "is required")
    result = _lock_and_match("contact", values, exclude_id=None)
    if result.matches:
        best = best_person(result.matches, values.get("email"))
        return Resolution(record=best, created=False, matches=result.matches)
    account: Account | None = None
    if values.get("company"):
        accounts = engine.find_matches("contact", values, targets=("account",)).matches
        if accounts and isinstance(accounts[0].record, Account):
            account = accounts[0].record
    new = ContactInput(**values, account_id=account.pk if account else person.account_id)
    created = create_contact(new, check_duplicates=False)
    return Resolution(record=created.record, created=True, matches=[], account=account)


@transaction.atomic(savepoint=False)  # callers that need one take it
def convert_lead(lead: Lead) -> Contact:
    """The lead's contact: created from the lead the first time, the same one after."""
    locked = lock_lead(lead.pk)
    if locked.converted_contact_id:
        return get_contact(locked.converted_contact_id)
    values = {name: getattr(locked, name) for name in PERSON_FIELDS}
    # The lead may be someone who is a contact already (they registered once as a lead,
    # once as a contact): it converts into that contact, never into a second one. No
    # match-key locks here: callers hold those of the person they resolved, and taking a
    # second set while holding the lead's row could deadlock two resolutions.
    existing = engine.find_matches("lead", values, targets=("contact",))
    if existing.matches:
        contact = best_person(existing.matches, values.get("email"))
        if not isinstance(contact, Contact):
            raise TypeError("contact matching returned a non-contact")
    else:
        new = ContactInput(**values, account_id=locked.account_id)
        contact = create_contact(new, check_duplicates=False).record
    locked.converted_contact = contact
    locked.converted_at = timezone.now()
    locked.save(update_fields=["converted_contact", "converted_at", "updated_at"])
    record_timeline(contact, kind="lead_converted", obj=locked, summary="Converted from lead")
    return contact


def contact_for(resolution: Resolution) -> Contact:
    """A Contact for a resolved person (converting a matched Lead)."""
    record = resolution.record
    return record if isinstance(record, Contact) else convert_lead(record)


def get_contact(contact_id: str) -> Contact:
    return get_by_id(Contact.objects.select_related("account"), contact_id, "contact")


def get_lead(lead_id: str) -> Lead:
    return get_by_id(Lead.objects.select_related("account"), lead_id, "lead")


def get_account(account_id: str) -> Account:
    return get_by_id(Account, account_id, "account")
