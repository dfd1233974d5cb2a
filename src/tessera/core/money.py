"""Money: integer minor units plus a currency code. No floats anywhere near money.

``PTS`` (loyalty points) is a currency of its own with no minor unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache

from babel.core import Locale, get_global
from babel.numbers import (
    format_currency,
    format_decimal,
    get_currency_precision,
    get_territory_currencies,
)
from babel.numbers import list_currencies as _babel_currencies

POINTS = "PTS"


class CurrencyMismatch(ValueError):
    """Raised by arithmetic or comparison across two currencies."""


@cache
def _known_currencies() -> frozenset[str]:
    return frozenset(_babel_currencies()) | {POINTS}


@cache
def active_currencies() -> frozenset[str]:
    """ISO 4217 codes legal tender somewhere today (CLDR's territory data, via Babel).

    Withdrawn codes (DEM, HRK) stay valid in stored records and in ``Money``; a request
    asking for a new price or payment in one is refused, as Stripe would refuse it."""
    today = date.today()  # noqa: DTZ011 - a calendar day; currency changes are by day
    return frozenset(
        code
        for territory in get_global("territory_currencies")
        for code in get_territory_currencies(
            territory, start_date=today, end_date=today, tender=True
        )
    )


def validate_active_currency(code: str) -> str:
    """The upper-cased code of a currency in use today; ValueError otherwise."""
    upper = validate_currency(code)
    if upper != POINTS and upper not in active_currencies():
        raise ValueError(f"{upper} is not an active ISO 4217 currency")
    return upper


def validate_currency(code: str) -> str:
    """Return the upper-cased ISO 4217 code (or PTS); ValueError for an unknown one."""
    if not isinstance(code, str):
        raise ValueError("currency must be a string")
    upper = code.strip().upper()
    if upper not in _known_currencies():
        raise ValueError(f"unknown currency {code!r}: use an ISO 4217 code or PTS")
    return upper


def minor_unit_digits(currency: str) -> int:
    if currency == POINTS:
        return 0
    return int(get_currency_precision(currency))


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        # bool is an int subclass; True dollars is a bug, not an amount.
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError(f"Money amount must be an int of minor units, got {self.amount!r}")
        object.__setattr__(self, "currency", validate_currency(self.currency))

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def from_major(cls, value: Decimal | str | int, currency: str) -> Money:
        """Build from a major-unit amount ("12.34" USD -> 1234); refuses sub-minor precision."""
        currency = validate_currency(currency)
        scaled = Decimal(value).scaleb(minor_unit_digits(currency))
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more precision than {currency} allows")
        return cls(int(scaled), currency)

    def _check(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} vs {other.currency}")
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.amount + self._check(other).amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.amount - self._check(other).amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __mul__(self, factor: int) -> Money:
        if not isinstance(factor, int) or isinstance(factor, bool):
            raise TypeError("Money can only be multiplied by an int (use allocate for shares)")
        return Money(self.amount * factor, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        return self.amount < self._check(other).amount

    def __le__(self, other: Money) -> bool:
        return self.amount <= self._check(other).amount

    def __gt__(self, other: Money) -> bool:
        return self.amount > self._check(other).amount

    def __ge__(self, other: Money) -> bool:
        return self.amount >= self._check(other).amount

    def __bool__(self) -> bool:
        return self.amount != 0

    def allocate(self, ratios: list[int]) -> list[Money]:
        """Split into parts proportional to ``ratios`` that sum exactly to the whole.

        What integer division leaves over goes one minor unit at a time to the parts with
        the largest remainders (the earlier part on a tie), never to a part whose ratio is
        zero, so no cent is created or lost and a line that takes no share gets none (e.g.
        a discount spread over invoice lines)."""
        if not ratios or any(r < 0 for r in ratios) or sum(ratios) == 0:
            raise ValueError("ratios must be non-negative and not all zero")
        total = sum(ratios)
        parts = [self.amount * r // total for r in ratios]
        remainder = self.amount - sum(parts)
        # Python's floor division makes every leftover non-negative, also for a negative
        # amount (a credit), so the parts are topped up in one direction only.
        leftovers = [self.amount * r - p * total for r, p in zip(ratios, parts, strict=True)]
        order = sorted((i for i, r in enumerate(ratios) if r > 0), key=lambda i: (-leftovers[i], i))
        for i in order[:remainder]:
            parts[i] += 1
        return [Money(p, self.currency) for p in parts]

    @property
    def major(self) -> Decimal:
        return Decimal(self.amount).scaleb(-minor_unit_digits(self.currency))

    def format(self, locale: str | Locale = "en_US") -> str:
        if self.currency == POINTS:
            return format_points(self.amount, locale)
        return str(format_currency(self.major, self.currency, locale=locale))

    def __str__(self) -> str:
        return self.format()


def format_points(number: int, locale: str | Locale = "en_US") -> str:
    """Points as people read them: "2,500 points", "1 point"."""
    return f"{format_decimal(number, locale=locale)} {'point' if abs(number) == 1 else 'points'}"
