"""Rules in probabilistic mode: scoring a candidate with the object's model, and training it.

A probabilistic rule's criteria and logic only choose the candidates (their match keys, as
in rules mode); the object's Fellegi-Sunter model then weighs every field of the pair and
the rule accepts a candidate whose match probability reaches its ``match_probability``.
``tessera matching train`` fits the model to the stored records without labels; until
then the shipped default weights apply.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Model as DjangoModel
from django.utils import timezone

from tessera.crm.matching.fs_levels import CONTACT_FIELDS, pack_address
from tessera.crm.matching.fs_model import FieldScore, Model, PairScore, default_model, score_pair
from tessera.crm.matching.keys import swapped
from tessera.crm.matching.models import MatchingModel
from tessera.crm.matching.rules import OBJECT_MODELS, RuleSpec
from tessera.crm.matching.values import field_text, match_text, record_phone

logger = logging.getLogger(__name__)

# The fields each object's model compares (an account's name is compared as a company).
MODEL_FIELDS: dict[str, tuple[str, ...]] = {
    "contact": CONTACT_FIELDS,
    "lead": CONTACT_FIELDS,
    "account": ("company", "phone", "address"),
}
TRAINING_LIMIT = 200_000  # records read for training: plenty for m and u, minutes at most
_PERSONS = frozenset({"contact", "lead"})


@dataclass(frozen=True)
class Scored:
    """A candidate a probabilistic rule accepted: its probability and each field's part."""

    probability: float
    match_weight: float
    fields: Mapping[str, FieldScore]

    @property
    def score(self) -> int:
        # The 0-100 score rules mode reports, so matches of both modes rank together.
        return max(0, min(100, int(self.probability * 100)))


def model_of(object_type: str, stored: Mapping[str, Any] | None) -> Model:
    """An object's model from its stored JSON, else the default over its fields."""
    if stored:
        try:
            return Model.from_json(stored)
        except ValueError:
            # Saved by another version (other levels): unusable until trained again.
            logger.warning("the %s matching model is out of date; retrain it", object_type)
    return default_model(MODEL_FIELDS[object_type])


def load_models() -> dict[str, Model]:
    """Every object's model (trained or default), as ``active_rules`` caches them."""
    trained = {m.object: m.model for m in MatchingModel.objects.all()}
    return {obj: model_of(obj, trained.get(obj)) for obj in OBJECT_MODELS}


def _source_field(object_type: str, name: str) -> str:
    return "name" if object_type == "account" and name == "company" else name


def _values(object_type: str, fields: tuple[str, ...], read: Any) -> dict[str, str]:
    """The model's fields of a record; ``read(name)`` gives a source field's text."""
    out = {}
    for name in fields:
        if name == "address":
            out[name] = pack_address(read("street"), read("city"), read("postal_code"))
        else:
            out[name] = read(_source_field(object_type, name))
    return out


def incoming_values(object_type: str, model: Model, record: Mapping[str, Any]) -> dict[str, str]:
    return _values(object_type, model.fields, lambda name: match_text(record, name))


def stored_values(object_type: str, model: Model, stored: DjangoModel | Any) -> dict[str, str]:
    def read(name: str) -> str:
        if name == "phone":
            return record_phone(getattr(stored, "phone", ""), getattr(stored, "country", ""))
        return field_text(getattr(stored, name, ""))

    return _values(object_type, model.fields, read)


@dataclass(frozen=True)
class Prepared:
    """An incoming record read once for a rule's model, in each orientation it is tried
    (a person also with first and last name swapped), for scoring all its candidates."""

    rule: RuleSpec
    model: Model
    orientations: tuple[dict[str, str], ...]


def prepare(rule: RuleSpec, incoming: Mapping[str, Any]) -> Prepared:
    model: Model = rule.model or default_model(MODEL_FIELDS[rule.object])
    a = incoming_values(rule.object, model, incoming)
    if rule.object in _PERSONS and a.get("first_name") and a.get("last_name"):
        return Prepared(rule, model, (a, swapped(a)))
    return Prepared(rule, model, (a,))


def score(prepared: Prepared, stored: Any) -> Scored | None:
    """The rule's verdict on a candidate: Scored if its probability reaches the rule's
    threshold, else None."""
    rule, model = prepared.rule, prepared.model
    b = stored_values(rule.object, model, stored)
    best: PairScore = max(
        (score_pair(model, a, b) for a in prepared.orientations), key=lambda s: s.match_weight
    )
    if best.match_probability < rule.match_probability:
        return None
    return Scored(best.match_probability, best.match_weight, best.fields)


# --- training ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trained:
    object: str
    records: int
    pairs: int
    seconds: float
    converged: bool
    stored: MatchingModel
    defaulted: tuple[str, ...] = ()  # fields that kept the hand-set m


def _training_rows(
    object_type: str, fields: tuple[str, ...], limit: int
) -> Iterator[dict[str, str]]:
    from tessera.crm.matching.engine import model_for

    manager = model_for(object_type)._default_manager
    sources = {_source_field(object_type, f) for f in fields if f != "address"}
    if "address" in fields:
        sources |= {"street", "city", "postal_code"}
    # The most recently active first: the records lookups most often meet.
    rows = manager.order_by("-updated_at").values(*sorted(sources | {"country"}))[:limit]
    for row in rows.iterator(2000):
        yield _values(object_type, fields, lambda name, r=row: match_text(r, name))


def train_model(object_type: str, *, limit: int = TRAINING_LIMIT, seed: int = 1) -> Trained:
    """Fit ``object_type``'s model to its stored records and save it; every process's rules
    pick it up within a second (the rule cache's version includes it)."""
    from tessera.crm.matching.fs_train import train

    fields = MODEL_FIELDS[object_type]
    records = list(_training_rows(object_type, fields, limit))
    started = time.perf_counter()
    model = train(records, fields=fields, seed=seed)
    seconds = time.perf_counter() - started
    info = model.training
    pairs = info.pairs if info is not None else 0
    stored, _ = MatchingModel.objects.update_or_create(
        object=object_type,
        defaults={
            "model": model.to_json(), "records": len(records), "pairs": pairs,
            "seconds": round(seconds, 3), "trained_at": timezone.now(),
        },
    )  # fmt: skip
    converged = bool(info.converged) if info is not None else False
    defaulted = info.defaulted if info is not None else ()
    return Trained(object_type, len(records), pairs, seconds, converged, stored, defaulted)
