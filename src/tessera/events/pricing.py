"""A promo code's discount, spread over the lines it applies to.

The discount is worked out on the lines' gross amounts (quantity x unit price) and split in
proportion to them with ``Money.allocate``, so the parts add up to the whole to the cent
and the invoice shows each line's share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal

from tessera.billing.invoices import LineSpec
from tessera.core.money import Money
from tessera.events.models import EventItem, PromoCode


def discount_total(gross: int, promo: PromoCode) -> int:
    if promo.percent_off is not None:
        share = Decimal(gross) * promo.percent_off / 100
        return int(share.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return min(gross, promo.amount_off or 0)


def _applies(promo: PromoCode, item: EventItem, eligible: set[str]) -> bool:
    # A code naming no items takes off everything but donations: a gift is not discounted.
    if eligible:
        return item.pk in eligible
    return item.kind != EventItem.Kind.DONATION


def discounts(
    lines: list[LineSpec],
    promo: PromoCode | None,
    items: Mapping[str, EventItem],
    currency: str,
) -> list[LineSpec]:
    """``lines`` with the promo code's discount allocated (unchanged without a code)."""
    if promo is None:
        return lines
    eligible = {i.pk for i in promo.items.all()}
    grosses = [
        line.quantity * line.unit_price if _applies(promo, items[line.item_id], eligible) else 0
        for line in lines
    ]
    total = discount_total(sum(grosses), promo)
    if total == 0:
        return lines
    parts = Money(total, currency).allocate(grosses)
    return [replace(line, discount=part.amount) for line, part in zip(lines, parts, strict=True)]
