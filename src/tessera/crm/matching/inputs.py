"""What a caller gives the matching-rule services: a rule to create, or the changes to one.

Criteria and rules are plain frozen data; the services check them against the object's
fields and methods (``check_definition``) and answer 422 for what does not fit."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from tessera.core.unset import UNSET, Unset


@dataclass(frozen=True)
class CriterionInput:
    """One criterion: a field compared by a method, counted above ``threshold`` (0-100)."""

    field: str
    method: str
    number: int | None = None  # default: its position in the rule, from 1
    threshold: int = 100
    match_blank: bool = False

    def as_mapping(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "field": self.field, "method": self.method, "threshold": self.threshold,
            "match_blank": self.match_blank,
        }  # fmt: skip
        if self.number is not None:
            out["number"] = self.number
        return out


@dataclass(frozen=True)
class RuleInput:
    """A new matching rule. In rules mode ``logic`` and ``criteria`` are required; a
    probabilistic rule without them chooses its candidates as the standard rule does."""

    object: str
    name: str
    description: str = ""
    logic: str | None = None
    criteria: tuple[CriterionInput, ...] = ()
    action: str = "allow"
    active: bool = True
    candidate_limit: int = 200
    mode: str = "rules"
    match_probability: float = 0.99


@dataclass(frozen=True)
class RuleChanges:
    """A change to a rule: a field left ``UNSET`` stays as it is; ``criteria`` replaces
    them all. ``object`` may only repeat the rule's own (a rule never changes object)."""

    object: str | Unset = UNSET
    name: str | Unset = UNSET
    description: str | Unset = UNSET
    logic: str | Unset = UNSET
    criteria: tuple[CriterionInput, ...] | Unset = UNSET
    action: str | Unset = UNSET
    active: bool | Unset = UNSET
    candidate_limit: int | Unset = UNSET
    mode: str | Unset = UNSET
    match_probability: float | Unset = UNSET

    def given(self) -> dict[str, Any]:
        """The fields given, criteria as the mappings ``check_definition`` reads."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out = {name: value for name, value in out.items() if value is not UNSET}
        if "criteria" in out:
            out["criteria"] = [c.as_mapping() for c in out["criteria"]]
        return out


def rule_data(rule: RuleInput) -> dict[str, Any]:
    """A new rule as the mapping the definition checks read (blank logic and no criteria
    are left out, as not given)."""
    out = {f.name: getattr(rule, f.name) for f in fields(rule)}
    out["criteria"] = [c.as_mapping() for c in rule.criteria]
    return {k: v for k, v in out.items() if k not in ("logic", "criteria") or v}
