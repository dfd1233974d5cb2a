"""Managing matching rules: validate, save, and keep every record's match keys current."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db import transaction

from tessera.core.errors import Conflict, ValidationFailed
from tessera.core.lookup import get_by_id
from tessera.crm.lock_objects import lock_batch, lock_rule
from tessera.crm.matching import logic, rules
from tessera.crm.matching.comparators import METHODS, methods_for
from tessera.crm.matching.inputs import RuleChanges, RuleInput, rule_data
from tessera.crm.matching.keys import is_blockable
from tessera.crm.matching.models import MatchingCriterion, MatchingRule, MatchKey
from tessera.crm.matching.rules import OBJECT_MODELS, CriterionSpec
from tessera.crm.matching.standard import STANDARD_RULES
from tessera.crm.matching.values import record_phone_e164

REBUILD_BATCH = 2000
# Records of one object re-keyed at once when its rules change (a few seconds' work).
SYNC_REBUILD_LIMIT = 20_000


def _criterion_errors(
    object_type: str, where: str, c: Mapping[str, Any], fields: Iterable[str]
) -> list[dict[str, str]]:
    """What is wrong with one criterion: a field the object cannot match on, a method
    that does not exist or cannot compare that field."""
    errors: list[dict[str, str]] = []
    if c["field"] not in fields:
        errors.append(
            {
                "field": f"{where}.field",
                "message": f"{object_type} has no matchable field {c['field']!r}",
            }
        )
    if c["method"] not in METHODS:
        errors.append(
            {
                "field": f"{where}.method",
                "message": f"unknown method; one of {', '.join(sorted(METHODS))}",
            }
        )
    elif c["method"] not in methods_for(c["field"]):
        fitting = ", ".join(methods_for(c["field"]))
        errors.append(
            {
                "field": f"{where}.method",
                "message": f"{c['method']} cannot compare {c['field']}; use {fitting}",
            }
        )
    return errors


def _check_narrowing(node: logic.Node, specs: list[CriterionSpec]) -> None:
    """Every OR group of the logic needs a criterion that match keys can look up: without
    one, finding candidates would mean reading every record."""
    by_number = {s.number: s for s in specs}
    for group in logic.groups(node):
        if group and not any(is_blockable(by_number[n]) for n in group):
            listed = " AND ".join(str(n) for n in sorted(group))
            raise ValidationFailed.field(
                "logic",
                f"the group ({listed}) has no criterion that can narrow a search; add one "
                "using exact, email, first_name, last_name, company, phone, street, city, "
                "postal_code or website",
            )


def check_definition(
    object_type: str, logic_text: str, criteria: Sequence[Mapping[str, Any]]
) -> list[CriterionSpec]:
    """Validate a rule definition; 422 naming the offending part otherwise."""
    if object_type not in OBJECT_MODELS:
        raise ValidationFailed.field("object", f"must be one of {', '.join(OBJECT_MODELS)}")
    if not criteria:
        raise ValidationFailed.field("criteria", "a rule needs at least one criterion")
    fields = rules.matchable_fields(object_type)
    specs: list[CriterionSpec] = []
    errors: list[dict[str, str]] = []
    for i, c in enumerate(criteria, start=1):
        number = int(c.get("number") or i)
        errors += _criterion_errors(object_type, f"criteria.{i - 1}", c, fields)
        specs.append(
            CriterionSpec(
                number,
                c["field"],
                c["method"],
                int(c.get("threshold", 100)),
                bool(c.get("match_blank", False)),
            )
        )
    numbers = [s.number for s in specs]
    if len(set(numbers)) != len(numbers):
        errors.append({"field": "criteria", "message": "criterion numbers must be unique"})
    if errors:
        raise ValidationFailed(
            "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors
        )
    try:
        node = logic.check(logic_text, set(numbers))
    except logic.LogicError as exc:
        raise ValidationFailed.field("logic", str(exc)) from exc
    _check_narrowing(node, specs)
    return specs


def get_rule(rule_id: str) -> MatchingRule:
    return get_by_id(MatchingRule.objects.prefetch_related("criteria"), rule_id, "matching rule")


def _save_criteria(rule: MatchingRule, specs: list[CriterionSpec]) -> None:
    rule.criteria.all().delete()
    MatchingCriterion.objects.bulk_create(
        MatchingCriterion(
            rule=rule,
            number=s.number,
            field=s.field,
            method=s.method,
            threshold=s.threshold,
            match_blank=s.match_blank,
        )
        for s in specs
    )


def rules_changed(object_type: str) -> None:
    """Rules changed: refresh this process's cache and re-key the object's records after
    commit. Up to ``SYNC_REBUILD_LIMIT`` records that happens before the change is
    answered, so a new block rule blocks at once; beyond, in the background (a million
    records take minutes), and until then the new rule finds only what the old keys do."""
    from tessera.crm.matching.engine import model_for
    from tessera.crm.tasks import rebuild_match_keys_task

    rules.invalidate()
    transaction.on_commit(rules.invalidate)
    if model_for(object_type)._default_manager.count() <= SYNC_REBUILD_LIMIT:
        transaction.on_commit(lambda: rebuild_match_keys(object_type))
    else:
        rebuild_match_keys_task.enqueue(object_type)


def standard_blocking(object_type: str) -> tuple[str, list[dict[str, Any]]]:
    """The standard rule's logic and criteria for ``object_type``: what a probabilistic
    rule that names none compares its candidates by (the thresholds are not used)."""
    _, _, logic_text, criteria = next(r for r in STANDARD_RULES if r[0] == object_type)
    return logic_text, [
        {"number": num, "field": f, "method": m, "threshold": t} for num, f, m, t in criteria
    ]


def _with_blocking(data: Mapping[str, Any]) -> dict[str, Any]:
    """A rule definition with logic and criteria: a rules-mode rule must give them (422
    otherwise); a probabilistic one without them blocks as the standard rule does."""
    out = dict(data)
    if out.get("logic") and out.get("criteria"):
        return out
    if out.get("mode") != MatchingRule.Mode.PROBABILISTIC:
        missing = "logic" if not out.get("logic") else "criteria"
        raise ValidationFailed.field(missing, "required in rules mode")
    if out.get("logic") or out.get("criteria"):
        raise ValidationFailed.field(
            "criteria", "give both logic and criteria, or neither (the standard blocking)"
        )
    out["logic"], out["criteria"] = standard_blocking(out["object"])
    return out


@transaction.atomic
def create_rule(rule_in: RuleInput) -> MatchingRule:
    data: Mapping[str, Any] = rule_data(rule_in)
    if data.get("object") not in OBJECT_MODELS:
        raise ValidationFailed.field("object", f"must be one of {', '.join(OBJECT_MODELS)}")
    data = _with_blocking(data)
    specs = check_definition(data["object"], data["logic"], data["criteria"])
    rule = MatchingRule.objects.create(
        object=data["object"],
        name=data["name"],
        description=data.get("description", ""),
        logic=data["logic"],
        action=data.get("action", MatchingRule.Action.ALLOW),
        active=data.get("active", True),
        candidate_limit=data.get("candidate_limit", 200),
        mode=data.get("mode", MatchingRule.Mode.RULES),
        match_probability=data.get("match_probability", 0.99),
    )
    _save_criteria(rule, specs)
    rules_changed(rule.object)
    return rule


@transaction.atomic
def update_rule(rule_id: str, changes: RuleChanges) -> MatchingRule:
    data = changes.given()
    rule = lock_rule(get_rule(rule_id).pk)
    if "object" in data and data["object"] != rule.object:
        raise ValidationFailed.field("object", "a rule's object cannot change; create a new rule")
    criteria = data.get("criteria")
    logic_text = data.get("logic", rule.logic)
    if criteria is not None or "logic" in data:
        current = criteria if criteria is not None else [
            {"number": c.number, "field": c.field, "method": c.method,
             "threshold": c.threshold, "match_blank": c.match_blank}
            for c in rule.criteria.all()
        ]  # fmt: skip
        specs = check_definition(rule.object, logic_text, current)
        _save_criteria(rule, specs)
    for attr in (
        "name", "description", "logic", "action", "active", "candidate_limit", "mode",
        "match_probability",
    ):  # fmt: skip
        if attr in data:
            setattr(rule, attr, data[attr])
    rule.save()
    rules_changed(rule.object)
    return get_rule(rule.pk)


@transaction.atomic
def delete_rule(rule_id: str) -> None:
    rule = get_rule(rule_id)
    if rule.is_standard:
        raise Conflict('Standard rules cannot be deleted; switch one off with {"active": false}.')
    rule.delete()
    rules_changed(rule.object)


def _refresh_phone(obj: Any) -> bool:
    """Set the record's ``phone_e164`` from its phone and country; whether it changed."""
    e164 = record_phone_e164(obj.phone, obj.country)
    if e164 == obj.phone_e164:
        return False
    obj.phone_e164 = e164
    return True


def rebuild_match_keys(object_type: str, progress: Any = None) -> int:
    """Recompute every record's keys for the current rules, a batch per transaction."""
    from tessera.crm.matching.engine import keys_for, model_for

    rules.invalidate()
    model = model_for(object_type)
    done = 0
    last = ""
    while True:
        with transaction.atomic():
            # Read and locked in the transaction that writes the keys: an edit committing
            # meanwhile either waits for this batch or is read here with its new values,
            # so its fresh keys are never replaced by keys of the values it replaced.
            batch = lock_batch(model, last, REBUILD_BATCH)
            if not batch:
                return done
            ids = [obj.pk for obj in batch]
            # The stored E.164 phone is re-read too: it depends on TESSERA_DEFAULT_REGION
            # and on how countries are read, as the keys do.
            changed = [obj for obj in batch if _refresh_phone(obj)]
            if changed:
                model._default_manager.bulk_update(changed, ["phone_e164"])
            MatchKey.objects.filter(object_type=object_type, object_id__in=ids).delete()
            MatchKey.objects.bulk_create(
                MatchKey(object_type=object_type, object_id=obj.pk, key=key)
                for obj in batch
                for key in sorted(keys_for(object_type, obj))
            )
        done += len(batch)
        last = batch[-1].pk
        if progress is not None:
            progress(len(batch))
