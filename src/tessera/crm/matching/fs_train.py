"""Training a probabilistic model without labels.

1. u, the probability of each level among pairs of different people, from random pairs:
   almost every random pair is two different people. Exact agreement is counted from the
   frequencies of the values' keys (exactly, not sampled); the other levels are sampled.
2. m and the prior by expectation maximisation on candidate pairs from several blocking
   sessions (``fs_blocking``), u held fixed. In each session the blocking fields are left
   out; a field's m is the mean of its estimates from the sessions that estimated it.
3. The prior: EM once more, over the pairs of all sessions with m and u fixed, gives the
   share of matches among them; nearly every match shares a key with its twin in some
   session, so that share times the number of candidate pairs (scaled back from the
   sample) is the number of matching pairs among all pairs.
4. Term-frequency tables of first name, last name and city.

EM runs on distinct comparison vectors with their (weighted) counts, not on pairs: a few
thousand vectors stand for hundreds of thousands of pairs. Everything random is drawn
from generators seeded from ``seed``, so the same records give the same model.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from tessera.crm.matching.fs_blocking import (
    DEFAULT_SESSIONS,
    BlockingSession,
    SessionSample,
    inclusion_probability,
    sample_session,
    sessions_for,
)
from tessera.crm.matching.fs_levels import MISSING, PERSON_FIELDS, TF_FIELDS, field_levels
from tessera.crm.matching.fs_model import (
    DEFAULT_PRIOR,
    PROBABILITY_FLOOR,
    TF_TOP_N,
    FieldParams,
    Model,
    SessionInfo,
    TermFrequencies,
    TrainingInfo,
    default_params,
)

__all__ = [
    "EmResult",
    "expectation_maximisation",
    "match_share",
    "plausible",
    "term_frequencies",
    "train",
    "u_probabilities",
]

INITIAL_MATCH_SHARE = 0.1
# Half a pair for each level never seen among the random pairs: its u is then small,
# as it should be, but not zero (which would make its weight infinite).
U_PSEUDO_COUNT = 0.5
PRIOR_RANGE = (1e-12, 0.5)
# The least m a level gets. EM on a few thousand matches cannot tell 1e-3 from 1e-9, and
# a level it never saw among them (a married name: last names that differ) would otherwise
# weigh so heavily against a match that no other field could outweigh it.
M_FLOOR = 1e-3
# The least (weighted) number of matches with a field present for a session's estimate
# of that field's m to count: fewer say more about chance than about the field.
MIN_EVIDENCE = 5.0
# The least share of matches whose values agree at some level (anything but "other") for a
# trained m to be believed. A database with few duplicates gives EM no cluster of matches
# to find, and it settles on the next most coherent one: namesakes (same names, similar
# email, nothing else in common) or a household. Their m says a match disagrees on phone,
# address and birth date 99% of the time, so that disagreeing costs a pair nothing, and
# relatives and namesakes then score as matches. One person's records agree far more often.
MIN_AGREEMENT = 0.2

Vectors = list[tuple[tuple[int, ...], float]]  # distinct comparison vector, summed weight


# --- u from random pairs ---------------------------------------------------------------


def u_probabilities(
    name: str, values: Sequence[str], rng: random.Random, pairs: int
) -> tuple[float, ...] | None:
    """u per level of a field from its non-blank ``values``; None with fewer than two."""
    levels = field_levels(name)
    keys = [levels.key(v) for v in values]
    present = [(v, k) for v, k in zip(values, keys, strict=True) if k]
    count = len(present)
    if count < 2:
        return None
    # Two distinct records have equal keys with this probability, exactly.
    same = sum(c * (c - 1) for c in Counter(k for _, k in present).values())
    u_exact = same / (count * (count - 1))
    tally = [0] * len(levels.labels)
    compare, draw = levels.compare, rng.random
    # No more draws than there are pairs: a small population's u is no better for more.
    for _ in range(min(pairs, count * (count - 1) // 2)):
        a, key_a = present[int(draw() * count)]
        b, key_b = present[int(draw() * count)]
        if key_a != key_b:  # equal keys (or one record twice) are counted above
            tally[compare(a, b)] += 1
    rest = sum(tally[1:]) + U_PSEUDO_COUNT * (len(tally) - 1)
    others = ((1.0 - u_exact) * (t + U_PSEUDO_COUNT) / rest for t in tally[1:])
    return (max(u_exact, PROBABILITY_FLOOR), *others)


def term_frequencies(values: Sequence[str], name: str, top: int = TF_TOP_N) -> TermFrequencies:
    """Relative frequency of each key among the non-blank values, the ``top`` most common;
    a value not in the table is assumed as common as the average one left out (or, when
    none is, as one seen once)."""
    key = field_levels(name).key
    counts = Counter(k for k in (key(v) for v in values) if k)
    total = sum(counts.values()) or 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept, omitted = ranked[:top], ranked[top:]
    default = sum(c for _, c in omitted) / len(omitted) / total if omitted else 1 / total
    return TermFrequencies({k: c / total for k, c in kept}, default)


# --- EM ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmResult:
    m: tuple[tuple[float, ...], ...]
    match_share: float
    iterations: int
    converged: bool
    evidence: tuple[float, ...]  # per field: the (weighted) matches it was present in


def _normalised(sums: list[float], total: float, old: tuple[float, ...]) -> tuple[float, ...]:
    if total <= 0:
        return old  # no pair of the session has this field: nothing learnt
    floored = [max(s / total, M_FLOOR) for s in sums]
    scale = sum(floored)
    return tuple(f / scale for f in floored)


def _em_step(
    vectors: Vectors,
    m: tuple[tuple[float, ...], ...],
    u: tuple[tuple[float, ...], ...],
    share: float,
) -> tuple[tuple[tuple[float, ...], ...], float, tuple[float, ...]]:
    sums = [[0.0] * len(levels) for levels in m]
    totals = [0.0] * len(m)
    matched = weight_total = 0.0
    for vector, weight in vectors:
        likely_match, likely_not = share, 1.0 - share
        for f, level in enumerate(vector):
            if level != MISSING:
                likely_match *= m[f][level]
                likely_not *= u[f][level]
        posterior = likely_match / (likely_match + likely_not)
        mass = weight * posterior
        matched += mass
        weight_total += weight
        for f, level in enumerate(vector):
            if level != MISSING:
                sums[f][level] += mass
                totals[f] += mass
    new_m = tuple(_normalised(sums[f], totals[f], m[f]) for f in range(len(m)))
    new_share = min(max(matched / weight_total, PROBABILITY_FLOOR), 1 - PROBABILITY_FLOOR)
    return new_m, new_share, tuple(totals)


def expectation_maximisation(
    vectors: Vectors,
    m: tuple[tuple[float, ...], ...],
    u: tuple[tuple[float, ...], ...],
    *,
    share: float = INITIAL_MATCH_SHARE,
    max_iterations: int,
    tolerance: float,
) -> EmResult:
    """m per field and level, and the share of matches, with u fixed; stops once no m
    moves by ``tolerance`` or more in an iteration."""
    evidence = tuple(0.0 for _ in m)
    if not vectors:
        return EmResult(m, share, 0, True, evidence)  # no pairs: nothing to learn
    for iteration in range(1, max_iterations + 1):
        new_m, share, evidence = _em_step(vectors, m, u, share)
        change = max(
            (
                abs(a - b)
                for new, old in zip(new_m, m, strict=True)
                for a, b in zip(new, old, strict=True)
            ),
            default=0.0,
        )
        m = new_m
        if change < tolerance:
            return EmResult(m, share, iteration, True, evidence)
    return EmResult(m, share, max_iterations, False, evidence)


def _bayes_factors(
    vectors: Vectors, m: tuple[tuple[float, ...], ...], u: tuple[tuple[float, ...], ...]
) -> list[float]:
    factors = []
    for vector, _ in vectors:
        factor = 1.0
        for f, level in enumerate(vector):
            if level != MISSING:
                factor *= m[f][level] / u[f][level]
        factors.append(factor)
    return factors


def match_share(
    vectors: Vectors,
    m: tuple[tuple[float, ...], ...],
    u: tuple[tuple[float, ...], ...],
    *,
    max_iterations: int,
    tolerance: float,
) -> float:
    """EM for the share of matches alone, m and u fixed."""
    factors = _bayes_factors(vectors, m, u)
    share = INITIAL_MATCH_SHARE
    total = sum(weight for _, weight in vectors) or 1.0
    for _ in range(max_iterations):
        odds = share / (1 - share)
        matched = sum(
            weight * f * odds / (f * odds + 1)
            for (_, weight), f in zip(vectors, factors, strict=True)
        )
        new = min(max(matched / total, PROBABILITY_FLOOR), 1 - PROBABILITY_FLOOR)
        if abs(new - share) < tolerance * new:
            return new
        share = new
    return share


# --- putting it together -------------------------------------------------------------------


@dataclass(frozen=True)
class _Comparisons:
    fields: tuple[str, ...]
    vectors: Mapping[int, tuple[int, ...]]  # pair code -> level per field


def _compare_pairs(
    fields: tuple[str, ...], records: Sequence[Mapping[str, str]], codes: set[int]
) -> _Comparisons:
    size = len(records)
    columns = [[r.get(f) or "" for r in records] for f in fields]
    levels = [field_levels(f).level for f in fields]
    vectors: dict[int, tuple[int, ...]] = {}
    for code in sorted(codes):
        i, j = divmod(code, size)
        vectors[code] = tuple(
            level(column[i], column[j]) for level, column in zip(levels, columns, strict=True)
        )
    return _Comparisons(fields, vectors)


def _session_vectors(sample: SessionSample, comparisons: _Comparisons) -> Vectors:
    """The session's distinct vectors over the fields it does not hold fixed, each with
    the sum of its pairs' weights (1 / probability kept)."""
    active = [i for i, f in enumerate(comparisons.fields) if f not in sample.session.fields]
    counts: dict[tuple[int, ...], float] = {}
    for code, probability in sample.pairs.items():
        vector = comparisons.vectors[code]
        projected = tuple(vector[i] for i in active)
        counts[projected] = counts.get(projected, 0.0) + 1.0 / probability
    return list(counts.items())


def _train_session(
    sample: SessionSample,
    comparisons: _Comparisons,
    m: Mapping[str, tuple[float, ...]],
    u: Mapping[str, tuple[float, ...]],
    *,
    max_iterations: int,
    tolerance: float,
) -> tuple[dict[str, tuple[float, ...]], SessionInfo]:
    active = [f for f in comparisons.fields if f not in sample.session.fields]
    vectors = _session_vectors(sample, comparisons)
    m_start, u_fixed = tuple(m[f] for f in active), tuple(u[f] for f in active)
    # Starting from the share of matches the starting m implies, not from a guess: a
    # session of nearly all non-matches started at 10% drifts towards a wrong cluster.
    share = match_share(
        vectors, m_start, u_fixed, max_iterations=max_iterations * 4, tolerance=tolerance
    )
    result = expectation_maximisation(
        vectors, m_start, u_fixed, share=share, max_iterations=max_iterations, tolerance=tolerance
    )
    info = SessionInfo(
        name=sample.session.name,
        fixed=sample.session.fields,
        pairs=len(sample.pairs),
        iterations=result.iterations,
        converged=result.converged,
        match_share=result.match_share,
    )
    learnt = {
        name: m_field
        for name, m_field, evidence in zip(active, result.m, result.evidence, strict=True)
        if evidence >= MIN_EVIDENCE
    }
    return learnt, info


def plausible(m: tuple[float, ...]) -> bool:
    """Whether ``m`` (per level, "other" last) can describe one person's records: exact
    agreement the likeliest kind of agreement, and agreement at least ``MIN_AGREEMENT``."""
    agreeing = m[:-1]
    return bool(agreeing) and m[0] >= max(agreeing) and sum(agreeing) >= MIN_AGREEMENT


def _mean(estimates: Sequence[tuple[float, ...]]) -> tuple[float, ...]:
    return tuple(sum(column) / len(estimates) for column in zip(*estimates, strict=True))


def _train_sessions(
    samples: Sequence[SessionSample],
    comparisons: _Comparisons,
    m: Mapping[str, tuple[float, ...]],
    u: Mapping[str, tuple[float, ...]],
    *,
    max_iterations: int,
    tolerance: float,
) -> tuple[dict[str, tuple[float, ...]], list[SessionInfo]]:
    """m per field, the mean of the sessions' estimates (a field none estimates keeps
    ``m``); each session starts from the means of those before it."""
    estimates: dict[str, list[tuple[float, ...]]] = {name: [] for name in m}
    current = dict(m)
    infos = []
    for sample in samples:
        learnt, info = _train_session(
            sample, comparisons, current, u, max_iterations=max_iterations, tolerance=tolerance
        )
        infos.append(info)
        for name, values in learnt.items():
            estimates[name].append(values)
            current[name] = _mean(estimates[name])
    return current, infos


def _prior(
    samples: Sequence[SessionSample],
    comparisons: _Comparisons,
    params: Mapping[str, FieldParams],
    *,
    max_iterations: int,
    tolerance: float,
) -> float:
    size = len(samples[0].keys) if samples else 0
    counts: dict[tuple[int, ...], float] = {}
    for code, vector in comparisons.vectors.items():
        weight = 1.0 / inclusion_probability(samples, *divmod(code, size))
        counts[vector] = counts.get(vector, 0.0) + weight
    vectors = list(counts.items())
    if not vectors:
        return DEFAULT_PRIOR  # no candidate pairs: nothing to estimate it from
    m = tuple(params[f].m for f in comparisons.fields)
    u = tuple(params[f].u for f in comparisons.fields)
    share = match_share(vectors, m, u, max_iterations=max_iterations * 4, tolerance=tolerance)
    matches = share * sum(weight for _, weight in vectors)
    prior = matches / (size * (size - 1) / 2)
    return min(max(prior, PRIOR_RANGE[0]), PRIOR_RANGE[1])


def _u_table(
    fields: tuple[str, ...], records: Sequence[Mapping[str, str]], seed: int, pairs: int
) -> dict[str, tuple[float, ...]]:
    out = {}
    for name in fields:
        # One generator per field, so adding a field leaves the others' samples as they were.
        rng = random.Random(f"{seed}:u:{name}")  # noqa: S311 - sampling, not secrets
        values = [r.get(name) or "" for r in records]
        u = u_probabilities(name, values, rng, pairs)
        out[name] = u if u is not None else default_params(name).u
    return out


def train(
    records: Sequence[Mapping[str, str]],
    *,
    fields: Sequence[str] = PERSON_FIELDS,
    seed: int = 1,
    max_pairs: int = 1_000_000,
    max_iterations: int = 100,
    tolerance: float = 1e-4,
    sessions: Sequence[BlockingSession] = DEFAULT_SESSIONS,
    max_block_size: int = 100,
    max_session_pairs: int = 250_000,
) -> Model:
    """A model of ``fields`` trained on ``records`` (field -> cleaned text, "" if blank).

    ``max_pairs`` random pairs per field estimate u; each blocking session keeps at most
    ``max_session_pairs`` candidate pairs, from blocks cut to ``max_block_size`` records.
    A field no session estimates keeps its hand-set m (``fs_model.default_model``)."""
    fields = tuple(fields)
    u = _u_table(fields, records, seed, max_pairs)
    m = {name: default_params(name).m for name in fields}
    rng = random.Random(f"{seed}:blocking")  # noqa: S311 - sampling, not secrets
    samples = [
        sample_session(s, records, rng, max_block_size=max_block_size, max_pairs=max_session_pairs)
        for s in sessions_for(fields, sessions)
    ]
    comparisons = _compare_pairs(fields, records, {c for s in samples for c in s.pairs})
    learnt, infos = _train_sessions(
        samples, comparisons, m, u, max_iterations=max_iterations, tolerance=tolerance
    )
    # A field whose learnt m no one person's records would show keeps the hand-set m.
    defaulted = tuple(name for name in fields if not plausible(learnt[name]))
    m = {name: m[name] if name in defaulted else learnt[name] for name in fields}
    params = {name: FieldParams(field_levels(name).labels, m[name], u[name]) for name in fields}
    prior = _prior(samples, comparisons, params, max_iterations=max_iterations, tolerance=tolerance)
    tf = {
        name: term_frequencies([r.get(name) or "" for r in records], name)
        for name in fields
        if name in TF_FIELDS
    }
    training = TrainingInfo(
        records=len(records),
        pairs=len(comparisons.vectors),
        u_pairs=max_pairs,
        iterations=sum(i.iterations for i in infos),
        converged=all(i.converged for i in infos),
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        seed=seed,
        sessions=tuple(infos),
        defaulted=defaulted,
    )
    return Model(fields, params, prior, tf, training)
