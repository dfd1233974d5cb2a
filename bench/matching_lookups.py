"""Lookups of the matching benchmark, timed, in either mode of the contact rule.

``run_lookups`` times ``engine.find_matches`` over the stream. ``use_probabilistic_mode``
trains the contact model on the stored contacts and swaps the standard contact and lead
rules for one probabilistic contact rule with the same blocking (so the stored match keys
stay valid and the two modes meet the same candidates).
"""

from __future__ import annotations

import cProfile
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from bench.matching_quality import Incoming, Predictions

Progress = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class Latency:
    seconds: list[float] = field(default_factory=list)

    @property
    def per_s(self) -> float:
        return len(self.seconds) / sum(self.seconds) if self.seconds else 0.0

    def ms(self, p: float) -> float:
        return percentile(self.seconds, p) * 1000


@dataclass
class LookupRun:
    latency: Latency
    answers: Predictions
    examined: list[int]
    limit_hits: int


def maybe_profile(where: Path | None, name: str) -> cProfile.Profile | None:
    if where is None:
        return None
    where.mkdir(parents=True, exist_ok=True)
    prof = cProfile.Profile()
    prof.enable()
    return prof


def finish_profile(where: Path | None, prof: cProfile.Profile | None, name: str) -> None:
    if prof is not None and where is not None:
        prof.disable()
        prof.dump_stats(where / f"{name}.prof")


def run_lookups(
    warmup: Sequence[Incoming], stream: Sequence[Incoming], progress: Progress,
    profile: Path | None = None, name: str = "lookups",
) -> LookupRun:  # fmt: skip
    from tessera.crm.matching import engine

    for item in warmup:
        engine.find_matches("contact", item.record)
    run = LookupRun(Latency(), Predictions([], []), [], 0)
    prof = maybe_profile(profile, name)
    with progress(name, len(stream)) as advance:
        for item in stream:
            t0 = time.perf_counter()
            result = engine.find_matches("contact", item.record)
            run.latency.seconds.append(time.perf_counter() - t0)
            run.answers.best.append(result.matches[0].id if result.matches else None)
            run.answers.matched.append([m.id for m in result.matches])
            run.examined.append(result.candidates_examined)
            run.limit_hits += result.limit_reached
            advance(1)
    finish_profile(profile, prof, name)
    return run


@dataclass
class Training:
    records: int
    pairs: int
    seconds: float
    converged: bool


def use_probabilistic_mode(match_probability: float) -> Training:
    """Train the contact model, then match contacts with one probabilistic rule only.

    The rule is written straight to the tables with the standard rule's blocking: through
    the service, a changed rule would re-key every contact, and here the keys stay the same.
    """
    from tessera.crm.matching import rules
    from tessera.crm.matching.models import MatchingCriterion, MatchingRule
    from tessera.crm.matching.probabilistic import train_model
    from tessera.crm.matching.services import standard_blocking

    done = train_model("contact")
    logic, criteria = standard_blocking("contact")
    MatchingRule.objects.filter(object__in=["contact", "lead"]).update(active=False)
    rule = MatchingRule.objects.create(
        object="contact", name="Bench: probabilistic", logic=logic, mode="probabilistic",
        match_probability=match_probability,
    )  # fmt: skip
    MatchingCriterion.objects.bulk_create(MatchingCriterion(rule=rule, **c) for c in criteria)
    rules.invalidate()
    return Training(done.records, done.pairs, done.seconds, done.converged)


def use_rules_mode() -> None:
    """Back to the standard rules (the import after the lookups is measured with them)."""
    from tessera.crm.matching import rules
    from tessera.crm.matching.models import MatchingRule

    MatchingRule.objects.filter(mode="probabilistic").delete()
    MatchingRule.objects.filter(object__in=["contact", "lead"], is_standard=True).update(
        active=True
    )
    rules.invalidate()
