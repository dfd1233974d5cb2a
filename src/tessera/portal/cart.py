"""The shop's cart, kept in the session until the order is placed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tessera.loyalty.models import Product

SESSION_KEY = "portal_cart"
MAX_LINES = 50


@dataclass(frozen=True)
class Line:
    product: Product
    quantity: int

    @property
    def total(self) -> int:
        return self.product.price_points * self.quantity


class Cart:
    def __init__(self, quantities: dict[str, int]) -> None:
        self.quantities = quantities

    @classmethod
    def of(cls, session: Any) -> Cart:
        raw = session.get(SESSION_KEY) or {}
        return cls({str(k): int(v) for k, v in raw.items() if int(v) > 0})

    def set(self, product_id: str, quantity: int) -> None:
        if quantity <= 0:
            self.quantities.pop(product_id, None)
        elif product_id in self.quantities or len(self.quantities) < MAX_LINES:
            self.quantities[product_id] = quantity

    def save(self, session: Any) -> None:
        session[SESSION_KEY] = self.quantities

    def clear(self, session: Any) -> None:
        self.quantities = {}
        session.pop(SESSION_KEY, None)

    @property
    def count(self) -> int:
        return sum(self.quantities.values())

    def lines(self, program_id: str) -> list[Line]:
        """The cart's products still on sale in this program, in name order."""
        products = Product.objects.filter(
            pk__in=self.quantities, program_id=program_id, active=True
        )
        return [Line(p, self.quantities[p.pk]) for p in sorted(products, key=lambda p: p.name)]
