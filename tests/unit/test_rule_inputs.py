"""The matching-rule inputs as the rule services read them."""

from __future__ import annotations

from tessera.crm.matching.inputs import CriterionInput, RuleChanges, RuleInput, rule_data


def test_a_change_gives_only_the_fields_set() -> None:
    assert RuleChanges(action="block").given() == {"action": "block"}


def test_a_change_to_criteria_gives_them_as_mappings() -> None:
    changes = RuleChanges(criteria=(CriterionInput("email", "email", number=2),))
    assert changes.given()["criteria"] == [
        {"field": "email", "method": "email", "threshold": 100, "match_blank": False, "number": 2}
    ]


def test_a_criterion_without_a_number_leaves_it_to_its_position() -> None:
    assert "number" not in CriterionInput("email", "email").as_mapping()


def test_a_new_rule_without_logic_or_criteria_leaves_both_out() -> None:
    data = rule_data(RuleInput(object="contact", name="p", mode="probabilistic"))
    assert {"logic", "criteria"} & data.keys() == set()
