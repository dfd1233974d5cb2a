from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tessera.core.money import CurrencyMismatch, Money, minor_unit_digits


def test_adding_in_one_currency_ignores_the_codes_case() -> None:
    assert Money(1250, "usd") + Money(50, "USD") == Money(1300, "USD")


def test_subtracting_can_go_below_zero() -> None:
    assert Money(100, "EUR") - Money(150, "EUR") == Money(-50, "EUR")


def test_multiplying_by_a_whole_number_from_either_side() -> None:
    assert Money(300, "EUR") * 3 == Money(900, "EUR")
    assert 2 * Money(5, "PTS") == Money(10, "PTS")


def test_negating_keeps_the_currency() -> None:
    assert -Money(5, "GBP") == Money(-5, "GBP")


def test_amounts_in_one_currency_are_ordered() -> None:
    assert Money(1, "USD") < Money(2, "USD")


def test_adding_mixed_currencies_is_refused() -> None:
    with pytest.raises(CurrencyMismatch):
        Money(100, "USD") + Money(100, "EUR")


def test_comparing_mixed_currencies_is_refused() -> None:
    with pytest.raises(CurrencyMismatch):
        _ = Money(100, "USD") < Money(100, "EUR")


@pytest.mark.parametrize("bad", [1.5, Decimal("1.5"), True, "100"])
def test_amount_must_be_integer_minor_units(bad: object) -> None:
    with pytest.raises(TypeError):
        Money(bad, "USD")  # type: ignore[arg-type]


def test_unknown_currency_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown currency"):
        Money(1, "XYZQ")


def test_float_multiplication_is_refused() -> None:
    with pytest.raises(TypeError):
        Money(100, "USD") * 1.1  # type: ignore[operator]


@pytest.mark.parametrize(
    ("major", "currency", "minor"),
    [("12.34", "USD", 1234), ("500", "JPY", 500), ("1.234", "KWD", 1234)],
)
def test_from_major_respects_minor_units(major: str, currency: str, minor: int) -> None:
    assert Money.from_major(major, currency) == Money(minor, currency)


def test_a_currency_without_minor_units_has_zero_digits() -> None:
    assert minor_unit_digits("JPY") == 0


def test_from_major_refuses_more_digits_than_the_currency_has() -> None:
    with pytest.raises(ValueError, match="precision"):
        Money.from_major("12.345", "USD")


@pytest.mark.parametrize(
    ("money", "locale", "text"),
    [
        (Money(123456, "USD"), "en_US", "$1,234.56"),
        (Money(123456, "EUR"), "de_DE", "1.234,56\xa0€"),
        (Money(500, "JPY"), "ja_JP", "￥500"),
        (Money(12500, "PTS"), "en_US", "12,500 points"),
    ],
)
def test_formatting_uses_babel_locales(money: Money, locale: str, text: str) -> None:
    assert money.format(locale) == text


@given(
    amount=st.integers(min_value=-(10**12), max_value=10**12),
    ratios=st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=12).filter(
        lambda r: sum(r) > 0
    ),
)
def test_allocate_never_creates_or_loses_a_cent(amount: int, ratios: list[int]) -> None:
    parts = Money(amount, "USD").allocate(ratios)
    assert sum(p.amount for p in parts) == amount
    assert len(parts) == len(ratios)
    total = sum(ratios)
    for part, ratio in zip(parts, ratios, strict=True):
        exact = amount * ratio / total
        assert abs(part.amount - exact) < 1 + 1e-9


def test_allocate_gives_nothing_to_a_part_with_no_share() -> None:
    parts = Money(333, "USD").allocate([0, 500, 500])
    assert parts[0].amount == 0


def test_allocate_gives_the_leftover_to_the_largest_remainder() -> None:
    assert [p.amount for p in Money(10, "USD").allocate([1, 2])] == [3, 7]


@given(st.integers(-(10**9), 10**9), st.lists(st.integers(0, 1000), min_size=1, max_size=8))
def test_allocate_never_gives_a_zero_ratio_anything(amount: int, ratios: list[int]) -> None:
    assume(sum(ratios) > 0)
    parts = Money(amount, "USD").allocate(ratios)
    assert all(p.amount == 0 for p, r in zip(parts, ratios, strict=True) if r == 0)
