"""How well the lookups of the matching benchmark did: precision, recall, F1, key recall.

A copy of a stored contact is *eligible* when the standard rule accepts it against its
source scored directly (``best_score``, no keys involved): that is the most any lookup can
find. *Key recall* is the share of eligible copies whose keys meet one of the source's
stored keys, so blocking alone is measured apart from ranking. Misses and false matches
are counted per damaged field ("last_name:transpose" counts for last_name).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# Fields printed for an example of an error.
SHOWN = (
    "first_name", "last_name", "email", "phone", "company", "title", "street", "city",
    "postal_code", "birthdate",
)  # fmt: skip


@dataclass
class Incoming:
    record: dict[str, str]
    source: str | None  # the contact it was derived from; None for someone else
    damage: list[str]
    lookalike: str | None = None  # the contact a hard negative was made to resemble


@dataclass
class Predictions:
    """One mode's answer per incoming record: the best match's id and every match's."""

    best: list[str | None]
    matched: list[list[str]]


@dataclass
class Truth:
    """What the stream allows, computed once for every mode: which copies the standard rule
    can match at all, and which of those the keys bring to the lookup."""

    eligible: list[bool]
    keys_meet: list[bool]
    stored: dict[str, Any]


def damaged_fields(tags: Sequence[str]) -> list[str]:
    """The fields a copy's damage touched ("name:swap" touches both names)."""
    out: list[str] = []
    for tag in tags:
        name = tag.split(":", 1)[0] if ":" in tag else tag
        out += ["first_name", "last_name"] if name == "name" else [name]
    return sorted(set(out))


def _f1(precision: float, recall: float) -> float:
    total = precision + recall
    return 2 * precision * recall / total if total else 0.0


@dataclass
class Quality:
    eligible: int = 0
    ineligible: int = 0
    others: int = 0  # new people and look-alikes: any match is false
    predicted: int = 0
    correct: int = 0
    found: int = 0
    copies: int = 0  # every copy of a stored contact, eligible or not
    found_copies: int = 0
    keys_meet: int = 0
    false_other_person: int = 0
    false_other_contact: int = 0
    eligible_by_field: Counter[str] = field(default_factory=Counter)
    found_by_field: Counter[str] = field(default_factory=Counter)
    false_by_kind: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.eligible if self.eligible else 1.0

    @property
    def recall_all(self) -> float:
        """Of every copy, the share matched to its source: what a person would count."""
        return self.found_copies / self.copies if self.copies else 1.0

    @property
    def f1_all(self) -> float:
        return _f1(self.precision, self.recall_all)

    @property
    def key_recall(self) -> float:
        return self.keys_meet / self.eligible if self.eligible else 1.0

    @property
    def f1(self) -> float:
        return _f1(self.precision, self.recall)


def compute_truth(stream: Sequence[Incoming], query_keys: Any) -> Truth:
    """Eligibility by the standard contact rule, and whether the keys meet, per record.
    ``query_keys(record)`` gives the keys a lookup reads for a record."""
    from tessera.crm.matching import engine
    from tessera.crm.matching.models import MatchingRule, MatchKey
    from tessera.crm.matching.rules import active_rules
    from tessera.crm.models import Contact

    standard = set(
        MatchingRule.objects.filter(object="contact", is_standard=True).values_list("pk", flat=True)
    )
    rules = [r for r in active_rules("contact") if r.id in standard]
    wanted = {i.source for i in stream if i.source} | {i.lookalike for i in stream if i.lookalike}
    stored = Contact.objects.in_bulk(list(wanted))
    stored_keys: dict[str, set[str]] = {}
    for object_id, key in MatchKey.objects.filter(
        object_type="contact", object_id__in=list(wanted)
    ).values_list("object_id", "key"):
        stored_keys.setdefault(object_id, set()).add(key)
    eligible, meet = [], []
    for item in stream:
        ok = item.source is not None and any(
            engine.best_score(rule, item.record, stored[item.source]) is not None for rule in rules
        )
        eligible.append(ok)
        meet.append(
            ok and bool(query_keys(item.record) & stored_keys.get(item.source or "", set()))
        )
    return Truth(eligible, meet, stored)


def measure(
    stream: Sequence[Incoming], truth: Truth, answer: Predictions, show_errors: int = 0
) -> Quality:
    q = Quality()
    for i, item in enumerate(stream):
        best, eligible = answer.best[i], truth.eligible[i]
        fields = damaged_fields(item.damage)
        if item.source is not None:
            q.copies += 1
            q.found_copies += best == item.source
        if item.source is None:
            q.others += 1
        elif eligible:
            q.eligible += 1
            q.keys_meet += truth.keys_meet[i]
            q.eligible_by_field.update(fields)
        else:
            q.ineligible += 1
        if best is not None:
            q.predicted += 1
            if best == item.source:
                q.correct += 1
            else:
                kind = item.damage[0] if item.source is None else "copy"
                q.false_by_kind[kind.split(":")[0]] += 1
                if item.source is None:
                    q.false_other_person += 1
                else:
                    q.false_other_contact += 1
        if eligible and best == item.source:
            q.found += 1
            q.found_by_field.update(fields)
        wrong = best is not None and best != item.source
        if (wrong or (eligible and best != item.source)) and len(q.examples) < show_errors:
            q.examples.append(_example(item, best, truth, wrong))
    return q


def _example(item: Incoming, best: str | None, truth: Truth, wrong: bool) -> str:
    lines = [
        f"[{'false match' if wrong else 'missed'}] damage={'+'.join(item.damage)}",
        f"  incoming:  {_describe(item.record)}",
    ]
    if item.source:
        lines.append(f"  source:    {_describe(truth.stored[item.source])}")
    if best and best in truth.stored:
        lines.append(f"  predicted: {_describe(truth.stored[best])}")
    elif best:
        lines.append(f"  predicted: {best}")
    return "\n".join(lines)


def _describe(obj: Any) -> str:
    get = obj.get if isinstance(obj, dict) else lambda f, d="": getattr(obj, f, d)
    return " | ".join(str(get(f, "") or "") for f in SHOWN)


def recall_by_field(q: Quality) -> list[tuple[str, int, float]]:
    """(field, eligible copies with that field damaged, recall among them), worst first."""
    rows = [
        (name, count, q.found_by_field[name] / count) for name, count in q.eligible_by_field.items()
    ]
    return sorted(rows, key=lambda row: (row[2], row[0]))
