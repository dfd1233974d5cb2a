"""Fellegi-Sunter model for probabilistic matching: parameters, scoring and JSON.

For each field and comparison level the model holds m, the probability of that level
among pairs of records of one person, and u, its probability among pairs of different
people. A pair's evidence is the sum of log2(m/u) over its fields' levels (a blank field
adds nothing), plus the log2 prior odds that two random records are one person.

An exact match on a common value is weaker evidence than on a rare one: for fields with
a term-frequency table, an exact match uses the value's own frequency in place of u.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

from tessera.crm.matching.fs_levels import (
    MISSING,
    MISSING_LABEL,
    PERSON_FIELDS,
    FieldLevels,
    field_levels,
)

__all__ = [
    "JSON_VERSION",
    "FieldParams",
    "FieldScore",
    "Model",
    "PairScore",
    "SessionInfo",
    "TermFrequencies",
    "TrainingInfo",
    "default_model",
    "field_weights",
    "match_probability",
    "score_pair",
    "weight_rows",
]

JSON_VERSION = 1
# No probability is ever exactly 0 or 1: either would make a weight infinite.
PROBABILITY_FLOOR = 1e-9
# The smallest frequency an exact match on a term-frequency field is weighed against, so
# that a value seen once in a small population does not outweigh everything else.
TF_MINIMUM_U = 1e-6
TF_TOP_N = 5_000


@dataclass(frozen=True)
class FieldParams:
    """One field's levels (labels as in ``fs_levels``) with their m and u probabilities."""

    labels: tuple[str, ...]
    m: tuple[float, ...]
    u: tuple[float, ...]

    def __post_init__(self) -> None:
        if not len(self.labels) == len(self.m) == len(self.u):
            raise ValueError("labels, m and u must have one entry per level")


@dataclass(frozen=True)
class TermFrequencies:
    """Key -> relative frequency among the field's non-blank values (the ``top`` most
    common); ``default`` is the frequency assumed for a value not in the table."""

    values: Mapping[str, float]
    default: float

    def frequency(self, key: str) -> float:
        return self.values.get(key, self.default)


@dataclass(frozen=True)
class SessionInfo:
    """One EM blocking session: the fields it blocked on (held fixed), pairs, outcome."""

    name: str
    fixed: tuple[str, ...]
    pairs: int
    iterations: int
    converged: bool
    match_share: float  # EM's share of matches among the session's (weighted) pairs


@dataclass(frozen=True)
class TrainingInfo:
    records: int
    pairs: int  # distinct candidate pairs compared for EM
    u_pairs: int  # random pairs sampled for u, per field
    iterations: int  # EM iterations over all sessions
    converged: bool  # every session converged
    trained_at: str  # ISO 8601, UTC
    seed: int
    sessions: tuple[SessionInfo, ...] = ()
    # Fields whose trained m was implausible (``fs_train.plausible``): they kept the hand-set m.
    defaulted: tuple[str, ...] = ()


@dataclass(frozen=True)
class FieldScore:
    level: str
    weight: float


@dataclass(frozen=True)
class PairScore:
    match_weight: float
    match_probability: float
    fields: Mapping[str, FieldScore]


@dataclass(frozen=True)
class Model:
    fields: tuple[str, ...]
    params: Mapping[str, FieldParams]
    prior: float  # probability that two records drawn at random are one person
    tf: Mapping[str, TermFrequencies] = field(default_factory=dict)
    training: TrainingInfo | None = None

    def __post_init__(self) -> None:
        if not 0 < self.prior < 1:
            raise ValueError("prior must be strictly between 0 and 1")
        for name in self.fields:
            params = self.params.get(name)
            if params is None:
                raise ValueError(f"no parameters for field {name!r}")
            if params.labels != field_levels(name).labels:
                raise ValueError(f"levels of {name!r} do not match its comparison levels")

    def __hash__(self) -> int:
        # Rule specs holding a model may be hashed; equal models agree on these.
        return hash((self.fields, self.prior))

    @cached_property
    def _compiled(self) -> tuple[_Compiled, ...]:
        # Everything scoring needs per field, in order, so a score is a loop of lookups; the
        # scores of levels without a term-frequency adjustment are made once and shared.
        out = []
        for name in self.fields:
            params = self.params[name]
            m_exact = max(params.m[0], PROBABILITY_FLOOR)
            scores = tuple(
                FieldScore(label, weight)
                for label, weight in zip(params.labels, field_weights(params), strict=True)
            )
            group = next((i for i, g in enumerate(CORRELATED) if name in g), -1)
            out.append((field_levels(name), scores, m_exact, self.tf.get(name), group))
        return tuple(out)

    @cached_property
    def prior_weight(self) -> float:
        return math.log2(self.prior / (1 - self.prior))

    def to_json(self) -> dict[str, Any]:
        """A plain, JSON-serialisable dict; the same model always gives the same dict."""
        return {
            "version": JSON_VERSION,
            "prior": self.prior,
            "fields": [
                _field_to_json(name, self.params[name], self.tf.get(name)) for name in self.fields
            ],
            "training": _training_to_json(self.training),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Model:
        """The model ``to_json`` gave; ValueError for another version or a malformed dict."""
        if data.get("version") != JSON_VERSION:
            raise ValueError(f"unsupported model version {data.get('version')!r}")
        try:
            fields = tuple(str(f["name"]) for f in data["fields"])
            params = {str(f["name"]): _params_from_json(f["levels"]) for f in data["fields"]}
            tf = {str(f["name"]): _tf_from_json(f["tf"]) for f in data["fields"] if f.get("tf")}
            training = _training_from_json(data.get("training"))
            return cls(fields, params, float(data["prior"]), tf, training)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed model: {exc}") from exc


_Compiled = tuple[FieldLevels, tuple[FieldScore, ...], float, TermFrequencies | None, int]
_MISSING_SCORE = FieldScore(MISSING_LABEL, 0.0)


# --- JSON ----------------------------------------------------------------------------------


def _field_to_json(name: str, params: FieldParams, tf: TermFrequencies | None) -> dict[str, Any]:
    levels = [
        {"label": label, "m": m, "u": u}
        for label, m, u in zip(params.labels, params.m, params.u, strict=True)
    ]
    return {"name": name, "levels": levels, "tf": _tf_to_json(tf)}


def _tf_to_json(tf: TermFrequencies | None) -> dict[str, Any] | None:
    if tf is None:
        return None
    # Most common first, ties by value: a stable order whatever order the table was built in.
    ordered = sorted(tf.values.items(), key=lambda item: (-item[1], item[0]))
    return {"default": tf.default, "values": dict(ordered)}


def _tf_from_json(data: Mapping[str, Any]) -> TermFrequencies:
    values = {str(k): float(v) for k, v in data["values"].items()}
    return TermFrequencies(values, float(data["default"]))


def _params_from_json(levels: list[Mapping[str, Any]]) -> FieldParams:
    return FieldParams(
        labels=tuple(str(level["label"]) for level in levels),
        m=tuple(float(level["m"]) for level in levels),
        u=tuple(float(level["u"]) for level in levels),
    )


def _training_to_json(info: TrainingInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    out = asdict(info)
    out["sessions"] = [{**s, "fixed": list(s["fixed"])} for s in out["sessions"]]
    out["defaulted"] = list(info.defaulted)
    return out


def _training_from_json(data: Mapping[str, Any] | None) -> TrainingInfo | None:
    if data is None:
        return None
    sessions = tuple(
        SessionInfo(
            name=str(s["name"]),
            fixed=tuple(str(f) for f in s["fixed"]),
            pairs=int(s["pairs"]),
            iterations=int(s["iterations"]),
            converged=bool(s["converged"]),
            match_share=float(s["match_share"]),
        )
        for s in data.get("sessions", ())
    )
    return TrainingInfo(
        records=int(data["records"]),
        pairs=int(data["pairs"]),
        u_pairs=int(data["u_pairs"]),
        iterations=int(data["iterations"]),
        converged=bool(data["converged"]),
        trained_at=str(data["trained_at"]),
        seed=int(data["seed"]),
        sessions=sessions,
        defaulted=tuple(str(f) for f in data.get("defaulted", ())),
    )


# --- scoring -------------------------------------------------------------------------------


def field_weights(params: FieldParams) -> tuple[float, ...]:
    """log2(m/u) per level."""
    return tuple(
        math.log2(max(m, PROBABILITY_FLOOR) / max(u, PROBABILITY_FLOOR))
        for m, u in zip(params.m, params.u, strict=True)
    )


def weight_rows(model: Model) -> list[tuple[str, str, float, float, float]]:
    """(field, level, m, u, weight) for every level of every field, as people read a model."""
    return [
        (name, label, m, u, w)
        for name in model.fields
        for label, m, u, w in zip(
            model.params[name].labels, model.params[name].m, model.params[name].u,
            field_weights(model.params[name]), strict=True,
        )
    ]  # fmt: skip


def match_probability(match_weight: float) -> float:
    """The probability of a match given the weight (log2 odds), without overflow."""
    if match_weight >= 0:
        return 1.0 / (1.0 + 2.0 ** -min(match_weight, 1000.0))
    odds = 2.0 ** max(match_weight, -1000.0)
    return odds / (1.0 + odds)


def score_pair(model: Model, a: Mapping[str, str], b: Mapping[str, str]) -> PairScore:
    """Match weight and probability of two records, with each field's level and weight."""
    total = model.prior_weight
    scores: dict[str, FieldScore] = {}
    group_best: dict[int, float] = {}
    for levels, fixed, m_exact, tf, group in model._compiled:
        va, vb = a.get(levels.field) or "", b.get(levels.field) or ""
        level = levels.level(va, vb)
        if level == MISSING:
            scores[levels.field] = _MISSING_SCORE
            continue
        if level == 0 and tf is not None:
            # u of an exact match is how often a random record has this very value.
            u_value = max(tf.frequency(levels.key(va)), TF_MINIMUM_U)
            field_score = FieldScore(levels.labels[0], math.log2(m_exact / u_value))
        else:
            field_score = fixed[level]
        if group >= 0 and field_score.weight > 0:
            # Correlated fields: their agreement counts once, as its strongest member's.
            best = group_best.get(group, 0.0)
            group_best[group] = max(best, field_score.weight)
            field_score = FieldScore(field_score.level, max(0.0, field_score.weight - best))
        total += field_score.weight
        scores[levels.field] = field_score
    return PairScore(total, match_probability(total), scores)


# Fields whose agreement is one piece of evidence, not several: a household shares its
# last name, its address and its landline, so a relative at home agrees on all three.
# Scored as independent they would outweigh a different first name, email and birth date
# (u of each is measured over the whole population, where a shared address is rare, not
# among the people of one address, where a shared last name is the rule). Their agreement
# counts as the strongest member's; their disagreement still counts in full.
CORRELATED: tuple[frozenset[str], ...] = (frozenset({"address", "phone", "last_name"}),)


# --- a model that works before any training ---------------------------------------------

# Hand-set (m, u) per level, in the order of ``fs_levels``. m: how often one person's two
# records compare so (typos, nicknames, moves, blanks aside); u: how often two different
# people's do, roughly as in a population of some hundred thousand.
_DEFAULT_PARAMS: dict[str, tuple[tuple[float, float], ...]] = {
    "first_name": (
        (0.80, 0.01),
        (0.08, 0.003),
        (0.04, 0.002),
        (0.03, 0.03),
        (0.02, 0.01),
        (0.03, 0.945),
    ),
    "last_name": ((0.85, 0.002), (0.07, 0.0005), (0.03, 0.003), (0.02, 0.01), (0.03, 0.9845)),
    "email": ((0.80, 0.00001), (0.08, 0.0001), (0.12, 0.99989)),
    "phone": ((0.75, 0.00001), (0.05, 0.0001), (0.05, 0.0001), (0.15, 0.99979)),
    "birthdate": ((0.85, 0.00005), (0.08, 0.003), (0.07, 0.99695)),
    "street": ((0.75, 0.0001), (0.07, 0.0001), (0.06, 0.005), (0.12, 0.9948)),
    "city": ((0.85, 0.02), (0.05, 0.002), (0.10, 0.978)),
    "postal_code": ((0.80, 0.005), (0.06, 0.005), (0.06, 0.03), (0.08, 0.96)),
    "company": ((0.70, 0.005), (0.10, 0.002), (0.20, 0.993)),
    "address": ((0.70, 0.00002), (0.12, 0.00002), (0.01, 0.0002), (0.06, 0.01), (0.11, 0.98976)),
}
# For a field without levels of its own: exact, close, other.
_GENERIC_PARAMS = ((0.80, 0.01), (0.08, 0.01), (0.12, 0.98))
DEFAULT_PRIOR = 1e-5


def default_params(name: str) -> FieldParams:
    pairs = _DEFAULT_PARAMS.get(name, _GENERIC_PARAMS)
    m_total = sum(m for m, _ in pairs)
    u_total = sum(u for _, u in pairs)
    return FieldParams(
        labels=field_levels(name).labels,
        m=tuple(m / m_total for m, _ in pairs),
        u=tuple(u / u_total for _, u in pairs),
    )


def default_model(fields: tuple[str, ...] = PERSON_FIELDS) -> Model:
    """Hand-set parameters, without term frequencies, so the mode works untrained."""
    return Model(
        fields=tuple(fields),
        params={name: default_params(name) for name in fields},
        prior=DEFAULT_PRIOR,
    )
