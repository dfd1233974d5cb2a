"""The standard matching rules as specs, without a database: for unit and property tests."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from tessera.crm.matching import logic
from tessera.crm.matching.rules import CriterionSpec, RuleSpec
from tessera.crm.matching.standard import STANDARD_RULES


def standard_rule(object_type: str = "contact") -> RuleSpec:
    """The standard rule of ``object_type`` as ``active_rules`` would return it."""
    _, name, text, criteria = next(r for r in STANDARD_RULES if r[0] == object_type)
    node = logic.parse(text)
    return RuleSpec(
        id=f"mru_standard_{object_type}",
        object=object_type,
        name=name,
        action="allow",
        logic=text,
        node=node,
        groups=tuple(logic.groups(node)),
        criteria=tuple(CriterionSpec(n, f, m, t, False) for n, f, m, t in criteria),
        candidate_limit=200,
    )


def stored(record: dict[str, Any]) -> SimpleNamespace:
    """A record as the engine reads a stored one (attributes, blanks for what it lacks)."""
    fields = ("first_name", "last_name", "email", "phone", "company", "title", "street",
              "city", "postal_code", "country", "birthdate")  # fmt: skip
    return SimpleNamespace(**{f: record.get(f, "") for f in fields})
