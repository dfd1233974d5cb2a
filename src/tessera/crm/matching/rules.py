"""Rule definitions as immutable specs, cached per process and checked when saved."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.db import models
from django.db.models import Count, Max

from tessera.crm.matching import logic
from tessera.crm.matching.logic import Node
from tessera.crm.matching.models import MatchingModel, MatchingRule, NameVariant

# Fields a rule may use, per object: every text or date field a person or account has,
# so custom rules can match on any of them (Salesforce allows fuzzy only on a few).
OBJECT_MODELS: dict[str, str] = {"contact": "Contact", "lead": "Lead", "account": "Account"}
# How long a process trusts its cached rules before checking the database for changes.
CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class CriterionSpec:
    number: int
    field: str
    method: str
    threshold: int
    match_blank: bool


@dataclass(frozen=True)
class RuleSpec:
    id: str
    object: str
    name: str
    action: str
    logic: str
    node: Node
    groups: tuple[frozenset[int], ...]
    criteria: tuple[CriterionSpec, ...]
    candidate_limit: int
    mode: str = "rules"
    match_probability: float = 0.99
    # Probabilistic mode: the object's Fellegi-Sunter model (the scorer's type; Any here
    # so that reading rules does not import the scorer).
    model: Any = None

    # Derived once per spec (specs are immutable and cached), for scoring.
    @cached_property
    def by_number(self) -> dict[int, CriterionSpec]:
        return {c.number: c for c in self.criteria}

    @cached_property
    def negates(self) -> bool:
        """Whether the logic has a NOT; without one it holds exactly when a group does."""
        return _has_not(self.node)


def _has_not(node: Node) -> bool:
    if isinstance(node, logic.Not):
        return True
    if isinstance(node, logic.Ref):
        return False
    return any(_has_not(t) for t in node.terms)


def matchable_fields(object_type: str) -> set[str]:
    from django.apps import apps

    model = apps.get_model("crm", OBJECT_MODELS[object_type])
    return {
        f.name
        for f in model._meta.get_fields()
        if isinstance(f, models.CharField | models.TextField | models.DateField)
        and not f.primary_key
    }


def to_spec(
    rule: MatchingRule, criteria: list[CriterionSpec] | None = None, model: Any = None
) -> RuleSpec:
    crit = (
        criteria
        if criteria is not None
        else [
            CriterionSpec(c.number, c.field, c.method, c.threshold, c.match_blank)
            for c in rule.criteria.all()
        ]
    )
    crit = sorted(crit, key=lambda c: c.number)
    node = logic.parse(rule.logic)
    return RuleSpec(
        id=rule.pk,
        object=rule.object,
        name=rule.name,
        action=rule.action,
        logic=rule.logic,
        node=node,
        groups=tuple(logic.groups(node)),
        criteria=tuple(crit),
        candidate_limit=rule.candidate_limit,
        mode=rule.mode,
        match_probability=rule.match_probability,
        model=model if rule.mode == MatchingRule.Mode.PROBABILISTIC else None,
    )


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version: tuple[object, ...] | None = None
        self.checked_at = 0.0
        self.by_object: dict[str, list[RuleSpec]] = {}


_cache = _Cache()


def _version() -> tuple[object, ...]:
    rules = MatchingRule.objects.aggregate(m=Max("updated_at"), c=Count("id"))
    variants = NameVariant.objects.aggregate(m=Max("updated_at"), c=Count("id"))
    trained = MatchingModel.objects.aggregate(m=Max("updated_at"), c=Count("id"))
    return (rules["m"], rules["c"], variants["m"], variants["c"], trained["m"], trained["c"])


def invalidate() -> None:
    with _cache.lock:
        _cache.version = None
        _cache.checked_at = 0.0


def active_rules(object_type: str) -> list[RuleSpec]:
    """The active rules for an object, rebuilt only when rules or name variants change."""
    now = time.monotonic()
    with _cache.lock:
        if _cache.version is not None and now - _cache.checked_at < CACHE_SECONDS:
            return _cache.by_object.get(object_type, [])
    version = _version()
    with _cache.lock:
        _cache.checked_at = now
        if version == _cache.version:
            return _cache.by_object.get(object_type, [])
    from tessera.crm.matching import normalize
    from tessera.crm.matching.probabilistic import load_models

    by_object: dict[str, list[RuleSpec]] = {}
    models_by_object = load_models()
    for rule in MatchingRule.objects.filter(active=True).prefetch_related("criteria"):
        spec = to_spec(rule, model=models_by_object.get(rule.object))
        by_object.setdefault(rule.object, []).append(spec)
    normalize.set_extra_variants(NameVariant.objects.values_list("name", "variant"))
    with _cache.lock:
        _cache.by_object = by_object
        _cache.version = version
        _cache.checked_at = now
        return by_object.get(object_type, [])
