"""What the wallet pages read: filtered movements, their details, the balance over time.

Reads only: the ledger and wallet services own every change."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Max, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from tessera.billing.models import Transaction
from tessera.core.spreadsheet import safe_cell
from tessera.loyalty.models import Member, PointLot, WalletTransaction

PAGE_SIZE = 25
EXPIRY_WINDOW_DAYS = 30


@dataclass(frozen=True)
class Filters:
    type: str = ""
    since: date | None = None
    until: date | None = None


def movements(member: Member, filters: Filters) -> QuerySet[WalletTransaction]:
    qs = WalletTransaction.objects.filter(member=member)
    if filters.type:
        qs = qs.filter(type=filters.type)
    zone = timezone.get_current_timezone()
    if filters.since:
        qs = qs.filter(created_at__gte=datetime.combine(filters.since, time.min, zone))
    if filters.until:
        end = datetime.combine(filters.until + timedelta(days=1), time.min, zone)
        qs = qs.filter(created_at__lt=end)
    return qs


@dataclass(frozen=True)
class Movement:
    """One line of the wallet as the member reads it, with what it was for."""

    wtx: WalletTransaction
    details: list[str]


def with_details(rows: list[WalletTransaction]) -> list[Movement]:
    """The detail of each movement: order lines, the card that paid, the event. Cards are
    read in one query for the whole page."""
    txn_ids = {str(r.detail.get("transaction_id")) for r in rows if r.detail.get("transaction_id")}
    cards = {
        t.pk: t.payment_method
        for t in Transaction.objects.filter(pk__in=txn_ids).select_related("payment_method")
    }
    return [Movement(r, _details(r, cards)) for r in rows]


def _details(wtx: WalletTransaction, cards: dict[str, Any]) -> list[str]:
    d = wtx.detail or {}
    out = [
        f"{line.get('quantity', 1)} \u00d7 {line.get('name', line.get('product_id'))}"
        for line in d.get("lines", [])
    ]
    card = cards.get(str(d.get("transaction_id", "")))
    if card is not None:
        out.append(f"{card.brand.title()} •••• {card.last4}")
    if d.get("event"):
        out.append(str(d["event"]))
    if d.get("activity"):
        out.append(str(d["activity"]))
    if d.get("credit_note"):
        out.append(f"Credit note {d['credit_note']}")
    if d.get("reason"):
        out.append(str(d["reason"]))
    return out


def csv_of(qs: QuerySet[WalletTransaction]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "date", "type", "label", "points", "balance_after", "reference"])
    for row in qs.order_by("-pk").iterator(chunk_size=2000):
        writer.writerow([
            row.pk, row.created_at.isoformat(), row.type, row.label, row.points,
            row.balance_after, safe_cell(row.reference),
        ])  # fmt: skip
    return out.getvalue()


@dataclass(frozen=True)
class Expiring:
    points: int
    first: datetime | None


def expiring(member: Member, now: datetime | None = None) -> Expiring:
    """Points that expire within the next 30 days, and when the first of them do."""
    moment = now or timezone.now()
    lots = PointLot.objects.filter(
        member=member,
        remaining__gt=0,
        expires_at__gt=moment,
        expires_at__lte=moment + timedelta(days=EXPIRY_WINDOW_DAYS),
    ).values_list("remaining", "expires_at")
    rows = list(lots)
    return Expiring(
        sum(r for r, _ in rows), min((e for _, e in rows if e is not None), default=None)
    )


def balance_by_day(member: Member, days: int = 180) -> list[tuple[date, int]]:
    """The balance at the end of each day with a movement, over the last ``days`` days."""
    since = timezone.now() - timedelta(days=days)
    # The database picks each day's last movement (ids grow with time): a member with ten
    # thousand movements sends about a hundred rows to Python, not ten thousand.
    zone = timezone.get_current_timezone()
    last_of_day = dict(
        WalletTransaction.objects.filter(member=member, created_at__gte=since)
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .order_by()
        .values("day")
        .annotate(last=Max("pk"))
        .values_list("day", "last")
    )
    balances = dict(
        WalletTransaction.objects.filter(pk__in=last_of_day.values()).values_list(
            "pk", "balance_after"
        )
    )
    return sorted((day, balances[pk]) for day, pk in last_of_day.items())
