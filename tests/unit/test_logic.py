import pytest

from tessera.crm.matching import logic
from tessera.crm.matching.standard import PERSON_LOGIC


@pytest.mark.parametrize(
    ("met", "matches"),
    [
        ({1: True, 2: True, 3: False}, True),
        ({1: False, 2: False, 3: True}, True),
        ({1: True, 2: False, 3: False}, False),
    ],
)
def test_and_binds_tighter_than_or(met: dict[int, bool], matches: bool) -> None:
    assert logic.evaluate(logic.parse("1 AND 2 OR 3"), met) is matches


@pytest.mark.parametrize(
    ("met", "matches"),
    [
        ({1: True, 3: True, 4: False}, True),
        ({1: True, 3: True, 4: True}, False),
    ],
)
def test_lowercase_operators_parentheses_and_not(met: dict[int, bool], matches: bool) -> None:
    assert logic.evaluate(logic.parse("1 and (2 or 3) and not 4"), met) is matches


def test_groups_are_the_or_groups_without_redundant_supersets() -> None:
    groups = logic.groups(logic.parse(PERSON_LOGIC))
    as_sets = [set(g) for g in groups]
    assert {1, 2, 5} in as_sets
    assert {1, 2, 6} in as_sets
    assert {1, 2, 7, 8} in as_sets
    assert {1, 2, 7, 9} in as_sets
    assert {1, 2, 3, 4} in as_sets
    # (1 AND 2 AND 6 AND 4) and (1 AND 2 AND 7 AND 6) contain (1 AND 2 AND 6): redundant.
    assert {1, 2, 4, 6} not in as_sets
    assert {1, 2, 6, 7} not in as_sets
    assert {1, 2, 3, 5} not in as_sets  # contains (1 AND 2 AND 5)
    assert {1, 2, 3, 7} in as_sets


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("1 AND", "ends too early"),
        ("(1 OR 2", "not closed"),
        ("1 OR 2)", "unexpected"),
        ("1 XOR 2", "unexpected"),
        ("1 AND 4", "do not exist"),
        ("1", "not used"),
    ],
)
def test_check_rejects_bad_logic(text: str, message: str) -> None:
    with pytest.raises(logic.LogicError, match=message):
        logic.check(text, {1, 2})


def test_deep_nesting_is_refused_not_a_crash() -> None:
    text = "(" * 499 + "1" + ")" * 499  # fits the 1,000 characters a rule's logic may have
    with pytest.raises(logic.LogicError, match="nest more than"):
        logic.check(text, {1})
    with pytest.raises(logic.LogicError, match="nest more than"):
        logic.check("NOT " * 40 + "1", {1})
    assert logic.check("(" * 20 + "1" + ")" * 20, {1}) == logic.Ref(1)


def test_an_exploding_expansion_is_refused_before_it_is_built() -> None:
    # 9 factors of 2 would make 512 groups (and 70 of them 2^70 if built first).
    factors = " AND ".join(f"({2 * i + 1} OR {2 * i + 2})" for i in range(70))
    with pytest.raises(logic.LogicError, match="more than 256"):
        logic.check(factors, set(range(1, 141)))
    # Repeated factors collapse instead of multiplying.
    assert logic.groups(logic.parse(" AND ".join(["(1 OR 2)"] * 70))) == [
        frozenset({1}),
        frozenset({2}),
    ]


@pytest.mark.parametrize("text", ["NOT 1 OR (2 AND 3)", "(2 AND 3) OR NOT 1", "NOT (1 OR 2) OR 3"])
def test_logic_that_holds_through_not_alone_is_refused(text: str) -> None:
    """No match key can find a record that matches only by *not* matching: such a rule
    would silently find nothing (and a block rule block nothing)."""
    with pytest.raises(logic.LogicError, match="NOT alone"):
        logic.check(text, {1, 2, 3})


def test_not_beside_a_positive_criterion_is_fine() -> None:
    node = logic.check("(1 AND NOT 2) OR (3 AND 1)", {1, 2, 3})
    assert logic.groups(node) == [frozenset({1})]
