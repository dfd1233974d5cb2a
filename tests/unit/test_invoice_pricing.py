"""Invoice pricing, worked by hand: exclusive and inclusive tax, half-even rounding, the
per-rate breakdown, and a property over random lines. Pure: no database."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tessera.billing.invoices import LineSpec, Priced, divide_half_even, price_lines


def line(
    quantity: int = 1,
    unit_price: int = 1000,
    *,
    discount: int = 0,
    rate: int = 1900,
    inclusive: bool = False,
) -> LineSpec:
    return LineSpec("itm_1", "att_1", "Ticket", quantity, unit_price, discount, rate, inclusive)


def one(spec: LineSpec) -> tuple[int, int, int]:
    priced = price_lines([spec], "EUR").lines[0]
    return priced.net, priced.tax, priced.amount


def test_exclusive_tax_is_added_to_the_discounted_net() -> None:
    # 3 x 10.00 = 30.00, less 5.00 = 25.00 net; 19% of it is 4.75.
    assert one(line(3, 1000, discount=500)) == (2500, 475, 2975)


def test_inclusive_tax_is_taken_out_of_the_gross() -> None:
    # 119.00 including 19%: 100.00 net and 19.00 tax.
    assert one(line(1, 11900, inclusive=True)) == (10000, 1900, 11900)


def test_inclusive_discount_comes_off_the_gross_first() -> None:
    # 2 x 59.50 = 119.00, less 11.90 = 107.10 gross: 90.00 net, 17.10 tax.
    assert one(line(2, 5950, discount=1190, inclusive=True)) == (9000, 1710, 10710)


@pytest.mark.parametrize(
    ("unit_price", "tax"),
    [(25, 2), (35, 4), (45, 4), (15, 2), (24, 2), (26, 3)],
    ids=["2.5-to-2", "3.5-to-4", "4.5-to-4", "1.5-to-2", "2.4-down", "2.6-up"],
)
def test_exclusive_tax_rounds_half_to_even(unit_price: int, tax: int) -> None:
    # 10% of 25 minor units is 2.5: half to even gives 2, where half up would give 3.
    _, got, _ = one(line(1, unit_price, rate=1000))
    assert got == tax


@pytest.mark.parametrize(("gross", "net"), [(3, 2), (9, 8)], ids=["2.5-to-2", "7.5-to-8"])
def test_inclusive_net_rounds_half_to_even(gross: int, net: int) -> None:
    # At 20% the net is 5/6 of the gross: 3 -> 2.5 and 9 -> 7.5.
    got, _, _ = one(line(1, gross, rate=2000, inclusive=True))
    assert got == net


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(5, 2, 2), (7, 2, 4), (-5, 2, -2), (-7, 2, -4), (10, 4, 2), (11, 4, 3), (-11, 4, -3)],
)
def test_divide_half_even(numerator: int, denominator: int, expected: int) -> None:
    assert divide_half_even(numerator, denominator) == expected


def test_zero_rate_has_no_tax() -> None:
    assert one(line(2, 1234, rate=0)) == (2468, 0, 2468)


@pytest.fixture
def mixed() -> Priced:
    return price_lines(
        [
            line(3, 1000, discount=500, rate=1900),  # 25.00 net, 4.75 tax
            line(1, 11900, rate=1900, inclusive=True),  # 100.00 net, 19.00 tax
            line(1, 2000, rate=700),  # 20.00 net, 1.40 tax
            line(1, 500, rate=0),  # 5.00 net, no tax
        ],
        "eur",
    )


def test_mixed_rates_break_down_per_rate_lowest_first(mixed: Priced) -> None:
    breakdown = [(t.rate_bp, t.net, t.tax) for t in mixed.tax_breakdown]
    assert breakdown == [(0, 500, 0), (700, 2000, 140), (1900, 12500, 2375)]


def test_mixed_subtotal_is_quantity_times_price_before_discount(mixed: Priced) -> None:
    assert mixed.subtotal == 3000 + 11900 + 2000 + 500


def test_mixed_discount_is_the_lines_discounts(mixed: Priced) -> None:
    assert mixed.discount == 500


def test_mixed_tax_is_the_sum_of_the_rates(mixed: Priced) -> None:
    assert mixed.tax == 475 + 1900 + 140


def test_mixed_total_is_what_the_lines_cost(mixed: Priced) -> None:
    assert mixed.total == 2975 + 11900 + 2140 + 500


def test_the_currency_is_upper_cased(mixed: Priced) -> None:
    assert mixed.currency == "EUR"


def test_a_discount_above_the_gross_is_refused() -> None:
    with pytest.raises(ValueError, match="discount"):
        price_lines([line(2, 1000, discount=2001)], "EUR")


def test_a_discount_equal_to_the_gross_makes_a_free_line() -> None:
    assert one(line(2, 1000, discount=2000)) == (0, 0, 0)


@pytest.mark.parametrize(
    "spec",
    [line(0), line(1, -1), line(1, 100, discount=-1), line(rate=-1), line(rate=10_001)],
    ids=["no-quantity", "negative-price", "negative-discount", "negative-rate", "rate-over-100%"],
)
def test_a_line_that_cannot_be_priced_is_refused(spec: LineSpec) -> None:
    with pytest.raises(ValueError, match="must"):
        price_lines([spec], "EUR")


def test_an_unknown_currency_is_refused() -> None:
    with pytest.raises(ValueError, match="currency"):
        price_lines([line()], "XYZQ")


def test_no_lines_cost_nothing() -> None:
    assert price_lines([], "USD").total == 0


@st.composite
def specs(draw: st.DrawFn) -> LineSpec:
    quantity = draw(st.integers(1, 50))
    unit_price = draw(st.integers(0, 10**7))
    discount = draw(st.integers(0, quantity * unit_price))
    rate = draw(st.sampled_from([0, 500, 700, 1000, 1900, 2000, 2100, 2500]))
    return line(quantity, unit_price, discount=discount, rate=rate, inclusive=draw(st.booleans()))


lines_strategy = st.lists(specs(), max_size=12)


@given(lines_strategy)
def test_the_total_is_the_sum_of_the_amounts(lines: list[LineSpec]) -> None:
    priced = price_lines(lines, "EUR")
    assert priced.total == sum(p.amount for p in priced.lines)


@given(lines_strategy)
def test_every_line_is_net_plus_tax(lines: list[LineSpec]) -> None:
    priced = price_lines(lines, "EUR")
    assert [p.net + p.tax for p in priced.lines] == [p.amount for p in priced.lines]


@given(lines_strategy)
def test_the_breakdown_sums_each_rates_lines(lines: list[LineSpec]) -> None:
    priced = price_lines(lines, "EUR")
    expected: dict[int, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for p in priced.lines:
        net, tax = expected[p.spec.tax_rate_bp]
        expected[p.spec.tax_rate_bp] = (net + p.net, tax + p.tax)
    assert {t.rate_bp: (t.net, t.tax) for t in priced.tax_breakdown} == dict(expected)


@given(lines_strategy)
def test_the_breakdown_tax_is_the_invoice_tax(lines: list[LineSpec]) -> None:
    priced = price_lines(lines, "EUR")
    assert sum(t.tax for t in priced.tax_breakdown) == priced.tax
