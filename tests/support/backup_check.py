"""Reads a restored database and prints, as JSON, what the backup tests assert on:

    python -m tests.support.backup_check

- ``ledger_ok``: ``ledger verify`` finds no difference;
- ``placed_orders``: the ids of the placed orders;
- ``incomplete_orders``: placed orders missing their payment, postings or lines, or whose
  amounts disagree;
- ``payments_without_order``: order payments (journal entries, wallet transactions) whose
  order is not there: half an order;
- ``wallets_off``: members whose wallet balance differs from the sum of its postings or of
  the member's wallet transactions.
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from typing import Any


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tessera.settings")
    import django

    django.setup()
    from tessera.ledger.services import verify

    report: dict[str, Any] = {"ledger_ok": verify().ok, **_orders(), **_wallets()}
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


def _orders() -> dict[str, Any]:
    from tessera.ledger.models import JournalEntry, Posting
    from tessera.loyalty.models import Order, OrderLine, WalletTransaction

    placed = {o.pk: o for o in Order.objects.filter(status="placed").select_related(
        "wallet_transaction", "member")}  # fmt: skip
    line_totals: dict[str, int] = defaultdict(int)
    for line in OrderLine.objects.filter(order__in=list(placed)):
        line_totals[line.order_id] += line.quantity * line.unit_points
    postings: dict[str, list[Posting]] = defaultdict(list)
    for posting in Posting.objects.filter(entry__object_type="order").select_related("entry"):
        postings[posting.entry.object_id].append(posting)
    incomplete = []
    for order_id, order in placed.items():
        wtx = order.wallet_transaction
        legs = postings.get(order_id, [])
        complete = (
            wtx is not None and wtx.points == -order.total_points
            and line_totals.get(order_id) == order.total_points
            and sorted(p.amount for p in legs) == [-order.total_points, order.total_points]
            and any(p.account_id == order.member.wallet_id for p in legs if p.amount < 0)
        )  # fmt: skip
        if not complete:
            incomplete.append(order_id)
    entries = JournalEntry.objects.filter(kind="order_placed").values_list("object_id", flat=True)
    debits = WalletTransaction.objects.filter(type="order_placed").values_list(
        "reference", flat=True
    )
    orphans = sorted({*entries, *debits} - set(placed))
    return {"placed_orders": sorted(placed), "incomplete_orders": incomplete,
            "payments_without_order": orphans}  # fmt: skip


def _wallets() -> dict[str, Any]:
    from django.db.models import Sum

    from tessera.ledger.models import Posting
    from tessera.loyalty.models import Member, WalletTransaction

    off = []
    for m in Member.objects.select_related("wallet"):
        posted = Posting.objects.filter(account=m.wallet).aggregate(s=Sum("amount"))["s"] or 0
        moved = WalletTransaction.objects.filter(member=m).aggregate(s=Sum("points"))["s"] or 0
        if not m.wallet.balance == posted == moved:
            off.append(m.pk)
    return {"wallets_off": off}


if __name__ == "__main__":
    sys.exit(main())
