"""Blocking sessions for training a probabilistic model: the candidate pairs EM learns from.

Each session pairs up records that share one blocking key (the same email, the same
phone, ...). Among such pairs matches are common enough for EM to tell them apart from
non-matches, which among random pairs it could not. A session's own blocking fields agree
in every pair it finds, so they say nothing there: EM holds them fixed and leaves them out.

Pairs are sampled, not all kept: a block over ``max_block_size`` records (everyone with
the placeholder phone 000-0000) is cut to a random subset of that size, and a session over
``max_pairs`` pairs keeps each with the same probability. Every kept pair carries the
probability it had of being kept, so counts over the sample can be scaled back up to the
whole (weights of 1/probability).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from tessera.crm.matching import normalize as n
from tessera.crm.matching.fs_levels import email_key, name_key, phone_key, postal_key

__all__ = [
    "DEFAULT_SESSIONS",
    "BlockingSession",
    "SessionSample",
    "inclusion_probability",
    "sample_session",
    "sessions_for",
]

MIN_PHONE_DIGITS = 7  # fewer digits than a subscriber number narrow nothing


@dataclass(frozen=True)
class BlockingSession:
    """Records whose ``key`` is equal (and not blank) are paired; ``fields`` are the model
    fields the key reads, held fixed while this session's pairs train the others."""

    name: str
    fields: tuple[str, ...]
    key: Callable[[Mapping[str, str]], str]


def _email_block(record: Mapping[str, str]) -> str:
    return email_key(record.get("email") or "")


def _phone_block(record: Mapping[str, str]) -> str:
    digits = phone_key(record.get("phone") or "")
    return digits if len(digits) >= MIN_PHONE_DIGITS else ""


def _name_block(record: Mapping[str, str]) -> str:
    # First three letters of the last name and the first initial: one typo late in either
    # name keeps the pair together, and the two together keep blocks small.
    last = name_key(record.get("last_name") or "").replace(" ", "")[:3]
    first = name_key(record.get("first_name") or "")[:1]
    return f"{last}|{first}" if last and first else ""


def _address_block(record: Mapping[str, str]) -> str:
    postal = postal_key(record.get("postal_code") or "")
    number = n.street_sections(record.get("street") or "")[0]
    return f"{postal}|{number}" if postal and number else ""


# In the order training runs them, each starting from the estimates of those before it:
# pairs sharing an email, a phone or an address are nearly all matches, and what they
# teach keeps EM on course in the name session, whose pairs are nearly all non-matches
# and which, started from the hand-set values, can settle on a cluster of look-alike
# non-matches (same city, same postal area) instead of the matches.
def _packed_address_block(record: Mapping[str, str]) -> str:
    street, _city, postal = [*str(record.get("address") or "").split("\x1f"), "", ""][:3]
    return _address_block({"street": street, "postal_code": postal})


DEFAULT_SESSIONS: tuple[BlockingSession, ...] = (
    BlockingSession("email", ("email",), _email_block),
    BlockingSession("phone", ("phone",), _phone_block),
    BlockingSession("address", ("postal_code", "street"), _address_block),
    BlockingSession("address (one field)", ("address",), _packed_address_block),
    BlockingSession("name", ("first_name", "last_name"), _name_block),
)


def sessions_for(
    fields: Iterable[str], sessions: Sequence[BlockingSession] = DEFAULT_SESSIONS
) -> tuple[BlockingSession, ...]:
    """The sessions whose blocking fields are all model fields: a session blocking on a
    field the model does not compare would hold nothing fixed that it could learn."""
    available = set(fields)
    return tuple(s for s in sessions if set(s.fields) <= available)


@dataclass(frozen=True)
class SessionSample:
    session: BlockingSession
    keys: tuple[str, ...]  # each record's blocking key ("" for none)
    pairs: Mapping[int, float]  # pair code (i * records + j, i < j) -> probability kept
    block_factor: Mapping[str, float]  # key -> share of its block's pairs kept, when cut
    rate: float  # probability of keeping each pair of the (cut) blocks
    total_pairs: int  # pairs of the session before any sampling

    def keep_probability(self, i: int, j: int) -> float:
        """The probability the pair had of being in this sample (0 if not a candidate)."""
        key = self.keys[i]
        if not key or key != self.keys[j]:
            return 0.0
        return self.block_factor.get(key, 1.0) * self.rate


def _blocks(keys: Sequence[str]) -> dict[str, list[int]]:
    blocks: dict[str, list[int]] = {}
    for index, key in enumerate(keys):
        if key:
            blocks.setdefault(key, []).append(index)
    return {key: members for key, members in blocks.items() if len(members) > 1}


def _pair_count(size: int) -> int:
    return size * (size - 1) // 2


def sample_session(
    session: BlockingSession,
    records: Sequence[Mapping[str, str]],
    rng: random.Random,
    *,
    max_block_size: int,
    max_pairs: int,
) -> SessionSample:
    """A session's candidate pairs, sampled as the module docstring says."""
    keys = tuple(session.key(record) for record in records)
    blocks = _blocks(keys)
    total = sum(_pair_count(len(members)) for members in blocks.values())
    kept = sum(_pair_count(min(len(members), max_block_size)) for members in blocks.values())
    rate = min(1.0, max_pairs / kept) if kept else 1.0
    size = len(records)
    pairs: dict[int, float] = {}
    factors: dict[str, float] = {}
    # Blocks in order of first appearance: the same records and seed give the same sample.
    for key, members in blocks.items():
        chosen = members
        if len(members) > max_block_size:
            chosen = sorted(rng.sample(members, max_block_size))
            factors[key] = _pair_count(max_block_size) / _pair_count(len(members))
        probability = factors.get(key, 1.0) * rate
        for position, i in enumerate(chosen):
            for j in chosen[position + 1 :]:
                if rate >= 1.0 or rng.random() < rate:
                    pairs[i * size + j] = probability
    return SessionSample(session, keys, pairs, factors, rate, total)


def inclusion_probability(samples: Sequence[SessionSample], i: int, j: int) -> float:
    """The probability a pair had of being in at least one sample: the samples are drawn
    independently, so it misses all of them with the product of its misses."""
    missed = 1.0
    for sample in samples:
        missed *= 1.0 - sample.keep_probability(i, j)
    return 1.0 - missed
