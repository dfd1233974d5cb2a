"""The row locks CRM services take (rule 3): one place, so every lock on a record of the
same kind is taken the same way, and several rows always in primary-key order."""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Model

from tessera.crm.matching.models import MatchingRule
from tessera.crm.models import Account, Contact, Lead

M = TypeVar("M", bound=Model)


def lock_record(model: type[M], pk: str) -> M:
    """The record with ``pk``, locked until the transaction ends (it must exist)."""
    return model._default_manager.select_for_update().get(pk=pk)


def lock_contact(pk: str) -> Contact:
    return lock_record(Contact, pk)


def lock_lead(pk: str) -> Lead:
    return lock_record(Lead, pk)


def lock_account(pk: str) -> Account:
    return lock_record(Account, pk)


def lock_rule(pk: str) -> MatchingRule:
    return lock_record(MatchingRule, pk)


def lock_batch(model: type[M], after: str, size: int) -> list[M]:
    """The next ``size`` records after ``after`` in primary-key order, locked in that order."""
    return list(
        model._default_manager.select_for_update().filter(pk__gt=after).order_by("pk")[:size]
    )


def contact_row_free(pk: str) -> bool:
    """Whether no other transaction holds the contact's row, locking it if so. It never
    waits (skip locked), and FOR NO KEY UPDATE is all a write of a non-key column needs."""
    free = Contact.objects.select_for_update(skip_locked=True, no_key=True).filter(pk=pk)
    return free.exists()
