"""Finding the existing records an incoming one matches.

1. Look up candidate ids by match key (indexed), at most the rules' candidate limit.
2. Score each candidate against each active rule: criteria are scored lazily, only as the
   rule's logic needs them, and a person is also tried with first and last name swapped.
3. Return the matches, best first (score, then most recently active).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.apps import apps
from django.db import connection
from django.db.models import Model

from tessera.core.bulk import insert_rows
from tessera.crm.matching import logic, probabilistic
from tessera.crm.matching.comparators import METHODS
from tessera.crm.matching.fs_model import FieldScore
from tessera.crm.matching.keys import query_keys, record_keys, same_keys, swapped
from tessera.crm.matching.models import MatchKey
from tessera.crm.matching.rules import OBJECT_MODELS, RuleSpec, active_rules
from tessera.crm.matching.values import field_text, match_text, record_phone

# Which stored objects an incoming record of each kind is compared with. Contacts and
# leads are people and are checked against each other (cross-object, as Salesforce does).
TARGETS: dict[str, tuple[str, ...]] = {
    "contact": ("contact", "lead"),
    "lead": ("lead", "contact"),
    "account": ("account",),
}
PERSON_OBJECTS = frozenset({"contact", "lead"})


@dataclass
class Match:
    object: str
    id: str
    score: int
    rule: str
    rule_name: str
    action: str
    record: Model = field(repr=False)
    # Probabilistic mode: the probability and each field's level and weight (why it matched).
    probability: float | None = None
    weights: Mapping[str, FieldScore] | None = None

    @property
    def last_active(self) -> datetime | None:
        return getattr(self.record, "last_activity_at", None) or getattr(
            self.record, "updated_at", None
        )


@dataclass
class MatchResult:
    matches: list[Match]
    candidates_examined: int
    limit_reached: bool

    @property
    def decision(self) -> str:
        return "link" if self.matches else "create"

    @property
    def blocking(self) -> list[Match]:
        return [m for m in self.matches if m.action == "block"]


def stored_text(stored: Model, name: str) -> str:
    """A stored record's field as ``match_text`` reads a mapping's. Its phone is read from
    its phone and country (a cache hit, not a parse) rather than taken from ``phone_e164``,
    which keeps the default region of when it was saved: so it agrees with the keys that a
    lookup or a rebuild computes now."""
    if name == "phone":
        return record_phone(getattr(stored, "phone", ""), getattr(stored, "country", ""))
    return field_text(getattr(stored, name, ""))


class _LazyScores(Mapping[int, bool]):
    """Criterion results computed on first use, so an OR group that fails on its first
    criterion never pays for the rest."""

    def __init__(self, rule: RuleSpec, incoming: Mapping[str, Any], stored: Model) -> None:
        self.rule = rule
        self.incoming = incoming
        self.stored = stored
        self.scores: dict[int, int] = {}
        self.passed: dict[int, bool] = {}
        self.by_number = rule.by_number

    def __getitem__(self, number: int) -> bool:
        if number not in self.passed:
            c = self.by_number[number]
            a = match_text(self.incoming, c.field)
            b = stored_text(self.stored, c.field)
            if not a or not b:
                ok = c.match_blank and not a and not b
                score = 100 if ok else 0
            else:
                score = METHODS[c.method](a, b)
                ok = score >= c.threshold
            self.scores[number] = score
            self.passed[number] = ok
        return self.passed[number]

    def __iter__(self) -> Iterator[int]:
        return iter(self.by_number)

    def __len__(self) -> int:
        return len(self.by_number)

    def get(self, number: int, default: Any = False) -> Any:
        return self[number] if number in self.by_number else default


def score_rule(rule: RuleSpec, incoming: Mapping[str, Any], stored: Model) -> int | None:
    """The match score (0-100) if ``stored`` satisfies ``rule`` for ``incoming``, else None.

    The score is the mean over the best satisfied OR group's criteria."""
    results = _LazyScores(rule, incoming, stored)
    # Without NOT the logic holds exactly when one of its groups does, and every group is
    # tried below anyway; only a logic with NOT needs evaluating as written.
    if rule.negates and not logic.evaluate(rule.node, results):
        return None
    best = None
    for group in rule.groups:
        if group and all(results[n] for n in group):
            mean = round(sum(results.scores[n] for n in group) / len(group))
            best = mean if best is None else max(best, mean)
    if best is None and rule.negates:  # satisfied only through NOT terms
        best = round(sum(results.scores.values()) / max(len(results.scores), 1))
    return best


def best_score(rule: RuleSpec, incoming: Mapping[str, Any], stored: Model) -> int | None:
    score = score_rule(rule, incoming, stored)
    if rule.object in PERSON_OBJECTS and incoming.get("first_name") and incoming.get("last_name"):
        flipped = score_rule(rule, swapped(incoming), stored)
        if flipped is not None and (score is None or flipped > score):
            score = flipped
    return score


def model_for(object_type: str) -> type[Model]:
    return apps.get_model("crm", OBJECT_MODELS[object_type])


def as_target(object_type: str, target: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """Map an incoming record's fields onto a target object's (a person's company is an
    account's name)."""
    data = dict(record)
    if target == "account" and object_type in PERSON_OBJECTS:
        data["name"] = record.get("company", "")
    return data


def candidates(
    target: str, keys: set[str], limit: int, exclude_id: str | None = None
) -> tuple[list[Model], bool]:
    """The records sharing a key with ``keys``, at most ``limit``; and whether there were
    more."""
    ids = candidate_ids([(target, keys, limit)], exclude_id)[target]
    return _load(target, ids[:limit]), len(ids) > limit


def candidate_ids(
    requests: list[tuple[str, set[str], int]], exclude_id: str | None = None
) -> dict[str, list[str]]:
    """For each (target, keys, limit): the ids of up to limit + 1 distinct records of the
    target sharing a key, those sharing the most keys first, all targets in one statement.

    Written out rather than through the ORM: building the queryset cost more than running
    it (0.2-0.3 ms a target, most of a lookup), and one statement for contacts and leads
    is one round trip. Only table and column names are put into the text."""
    out: dict[str, list[str]] = {target: [] for target, _, _ in requests}
    table, type_col, key_col, id_col = _key_table()
    selects: list[str] = []
    params: list[Any] = []
    for i, (target, keys, limit) in enumerate(requests):
        if not keys:
            continue
        where = f"{type_col} = %s AND {key_col} IN ({', '.join(['%s'] * len(keys))})"
        params += [target, *sorted(keys)]
        if exclude_id:
            where += f" AND {id_col} <> %s"
            params.append(exclude_id)
        params.append(limit + 1)
        # Over the limit, keep the records sharing the most keys with the incoming one
        # (a true duplicate shares several: its email, its name with the phone, ...)
        # rather than whichever the index returns first.
        selects.append(
            f"SELECT * FROM (SELECT {type_col}, {id_col} FROM {table} "  # noqa: S608
            f"WHERE {where} GROUP BY {type_col}, {id_col} "
            f"ORDER BY COUNT(*) DESC, {id_col} LIMIT %s) AS c{i}"
        )
    if selects:
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(selects), params)
            for object_type, object_id in cursor.fetchall():
                out[object_type].append(object_id)
    return out


def _load(target: str, ids: list[str]) -> list[Model]:
    return list(model_for(target)._default_manager.filter(pk__in=ids)) if ids else []


def find_matches(
    object_type: str,
    record: Mapping[str, Any],
    *,
    exclude_id: str | None = None,
    targets: tuple[str, ...] | None = None,
) -> MatchResult:
    """Every stored record the active rules say ``record`` duplicates. Read-only."""
    # Per target: its rules, the record as that target, the keys and the candidate limit.
    plans: list[tuple[str, list[RuleSpec], dict[str, Any], set[str], int]] = []
    for target in targets or TARGETS[object_type]:
        rules = active_rules(target)
        if not rules:
            continue
        incoming = as_target(object_type, target, record)
        # Contacts and leads have the same criteria: their keys are computed once.
        keys = next((k for _, r, i, k, _ in plans if i == incoming and same_keys(r, rules)), None)
        if keys is None:
            keys = query_keys(rules, incoming)
        plans.append((target, rules, incoming, keys, max(r.candidate_limit for r in rules)))
    ids = candidate_ids([(t, k, limit) for t, _, _, k, limit in plans], exclude_id)
    matches: list[Match] = []
    examined = 0
    limit_reached = False
    for target, rules, incoming, _, limit in plans:
        found = _load(target, ids[target][:limit])
        examined += len(found)
        limit_reached |= len(ids[target]) > limit
        matches += score_candidates(target, rules, incoming, found)
    matches.sort(key=rank)
    return MatchResult(matches=matches, candidates_examined=examined, limit_reached=limit_reached)


def score_candidates(
    target: str, rules: list[RuleSpec], incoming: Mapping[str, Any], found: list[Model]
) -> list[Match]:
    """Each candidate that satisfies a rule, with its best rule and score."""
    out = []
    # A probabilistic rule reads the incoming record once, not once per candidate.
    prepared = {
        r.id: probabilistic.prepare(r, incoming) for r in rules if r.mode == "probabilistic"
    }
    for stored in found:
        best: Match | None = None
        for rule in rules:
            found_match = rule_match(target, rule, incoming, stored, prepared.get(rule.id))
            if found_match is not None and (best is None or found_match.score > best.score):
                best = found_match
        if best is not None:
            out.append(best)
    return out


def rule_match(
    target: str,
    rule: RuleSpec,
    incoming: Mapping[str, Any],
    stored: Model,
    prepared: probabilistic.Prepared | None = None,
) -> Match | None:
    """``stored`` as a match of ``incoming`` under one rule, in the rule's mode, or None."""
    if rule.mode == "probabilistic":
        scored = probabilistic.score(prepared or probabilistic.prepare(rule, incoming), stored)
        if scored is None:
            return None
        return Match(
            target, str(stored.pk), scored.score, rule.id, rule.name, rule.action, stored,
            probability=scored.probability, weights=scored.fields,
        )  # fmt: skip
    score = best_score(rule, incoming, stored)
    if score is None:
        return None
    return Match(target, str(stored.pk), score, rule.id, rule.name, rule.action, stored)


def rank(m: Match) -> tuple[int, float, str]:
    active = m.last_active.timestamp() if m.last_active else 0.0
    return (-m.score, -active, m.id)


def record_values(obj: Model) -> dict[str, Any]:
    return {f.name: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def keys_for(object_type: str, obj: Model | Mapping[str, Any]) -> set[str]:
    values = obj if isinstance(obj, Mapping) else record_values(obj)
    return record_keys(active_rules(object_type), values)


def index_record(object_type: str, obj: Model, *, new: bool = False) -> None:
    """Replace the record's match keys with those of its current values (on every save;
    a record just inserted has none to delete)."""
    if not new:
        MatchKey.objects.filter(object_type=object_type, object_id=obj.pk).delete()
    MatchKey.objects.bulk_create(
        MatchKey(object_type=object_type, object_id=obj.pk, key=k)
        for k in sorted(keys_for(object_type, obj))
    )


def unindex_record(object_type: str, object_id: str) -> None:
    MatchKey.objects.filter(object_type=object_type, object_id=object_id).delete()


# --- many records at once (CSV import) ----------------------------------------------------

# Keys per statement where the database takes one parameter per key.
KEY_BATCH = 900


def _key_table() -> tuple[str, str, str, str]:
    """The quoted match-key table and its object type, key and object id columns. Only
    these names are ever put into SQL text here; values always go as parameters."""
    qn = connection.ops.quote_name
    column = {f.name: qn(str(f.column)) for f in MatchKey._meta.concrete_fields}
    return qn(MatchKey._meta.db_table), column["object_type"], column["key"], column["object_id"]


def ids_by_key(keys_by_target: Mapping[str, set[str]]) -> dict[str, dict[str, list[str]]]:
    """target -> key -> ids of the stored records with that key, for many keys at once.

    One statement for all targets, with the keys as one JSON list rather than a parameter
    each: tens of thousands of keys cost one short statement to build and one to send
    (PostgreSQL and SQLite; other databases get batches through the ORM). A target with
    no keys stored at all, such as leads where there are none, costs one index probe
    instead of one per key."""
    out: dict[str, dict[str, list[str]]] = {t: {} for t in keys_by_target}
    targets = sorted(t for t, keys in keys_by_target.items() if keys)
    wanted = sorted(set().union(*(keys_by_target[t] for t in targets)))
    if not wanted:
        return out
    table, type_col, key_col, id_col = _key_table()
    rows: Iterable[tuple[str, str, str]]
    if connection.vendor in ("postgresql", "sqlite"):
        # Both probe the index in key order: PostgreSQL sorts an array for "= ANY",
        # SQLite the rows of an "IN (SELECT ...)". Each EXISTS does not depend on the
        # row, so it is evaluated once, before any probe.
        if connection.vendor == "postgresql":
            given, match = "jsonb_array_elements_text(%s::jsonb)", "= ANY(ARRAY(SELECT k FROM w))"
        else:
            given, match = "value FROM json_each(%s)", "IN (SELECT k FROM w)"
        selects = [
            f"SELECT {type_col}, {key_col}, {id_col} FROM {table} "  # noqa: S608 (names only)
            f"WHERE EXISTS (SELECT 1 FROM {table} WHERE {type_col} = %s) "
            f"AND {type_col} = %s AND {key_col} {match}"
            for _ in targets
        ]
        sql = f"WITH w(k) AS (SELECT {given}) " + " UNION ALL ".join(selects)
        params = [json.dumps(wanted)] + [t for t in targets for _ in (1, 2)]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
    else:  # pragma: no cover - the project runs on PostgreSQL and SQLite
        rows = [
            row
            for i in range(0, len(wanted), KEY_BATCH)
            for row in MatchKey.objects.filter(
                object_type__in=targets, key__in=wanted[i : i + KEY_BATCH]
            ).values_list("object_type", "key", "object_id")
        ]
    for object_type, key, object_id in rows:
        if key in keys_by_target[object_type]:
            out[object_type].setdefault(key, []).append(object_id)
    return out


def load_records(target: str, ids: Iterable[str]) -> dict[str, Model]:
    """The records with these ids, by id (in batches, for databases that limit parameters)."""
    wanted = sorted(set(ids))
    manager = model_for(target)._default_manager
    out: dict[str, Model] = {}
    for i in range(0, len(wanted), KEY_BATCH):
        out.update((str(r.pk), r) for r in manager.filter(pk__in=wanted[i : i + KEY_BATCH]))
    return out


def store_keys(object_type: str, keys_by_id: Mapping[str, Iterable[str]]) -> int:
    """Insert the match keys of many new records; returns how many rows were written."""
    fields = {f.name: str(f.column) for f in MatchKey._meta.concrete_fields}
    return insert_rows(
        MatchKey._meta.db_table,
        [fields["object_type"], fields["key"], fields["object_id"]],
        ((object_type, k, str(i)) for i, keys in keys_by_id.items() for k in sorted(keys)),
    )
