"""Reading the CRM: pages of contacts and leads, a contact's timeline, and the records an
incoming one matches. Nothing here writes."""

from __future__ import annotations

from dataclasses import asdict

from django.db.models import QuerySet
from django.db.models.functions import Lower

from tessera.core.pagination import Page, paginate
from tessera.crm.inputs import MatchQuery, MatchReport, PersonSearch, TimelineQuery
from tessera.crm.matching import engine
from tessera.crm.models import Contact, Lead, TimelineEntry
from tessera.crm.services import get_contact


def _with_email(queryset: QuerySet[Contact] | QuerySet[Lead], email: str | None) -> QuerySet:
    """Those with ``email`` in any case (an index on the lower-cased email serves this)."""
    if not email:
        return queryset
    return queryset.annotate(email_lower=Lower("email")).filter(email_lower=email.strip().lower())


def search_contacts(search: PersonSearch) -> Page[Contact]:
    queryset = _with_email(Contact.objects.all(), search.email)
    return paginate(queryset, limit=search.limit, cursor=search.cursor)


def search_leads(search: PersonSearch) -> Page[Lead]:
    queryset = _with_email(Lead.objects.all(), search.email)
    return paginate(queryset, limit=search.limit, cursor=search.cursor)


def contact_timeline(query: TimelineQuery) -> Page[TimelineEntry]:
    """A page of the contact's timeline, newest first; 404 for a contact that is not there."""
    contact = get_contact(query.contact_id)
    entries = TimelineEntry.objects.filter(contact=contact)
    return paginate(entries, limit=query.limit, cursor=query.cursor)


def find_duplicates(query: MatchQuery) -> MatchReport:
    """The existing records ``query`` matches, best first."""
    record = {k: v for k, v in asdict(query).items() if v is not None and k != "object"}
    return MatchReport.of(engine.find_matches(query.object, record))
