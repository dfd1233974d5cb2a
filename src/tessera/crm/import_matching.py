"""Matching a chunk of CSV rows at once: one query finds the candidates of every row by
match key, rows are scored in memory, and a row matching a row created earlier in the
same chunk links to it."""

from __future__ import annotations

from typing import Any

from django.db.models import Model

from tessera.crm.import_rows import Outcome, RowKeys, RowResult
from tessera.crm.matching import engine
from tessera.crm.matching.keys import lookup_keys, record_keys, same_keys
from tessera.crm.matching.rules import active_rules
from tessera.crm.matching.values import record_phone_e164
from tessera.crm.models import Contact
from tessera.crm.services import PERSON_FIELDS

# target -> key -> the ids of the stored records holding it; target -> id -> the record
KeyIndex = dict[str, dict[str, list[str]]]
Loaded = dict[str, dict[str, Model]]


class ChunkMatcher:
    """Matches one chunk of rows against the database and against itself."""

    def __init__(self) -> None:
        self.rules = {t: active_rules(t) for t in ("contact", "lead")}
        # Leads have the contacts' criteria, so their keys are the same: computed once.
        self.same_as: dict[str, str] = {}
        for target, rules in self.rules.items():
            computed = (t for t, s in self.same_as.items() if t == s)
            self.same_as[target] = next(
                (t for t in computed if same_keys(self.rules[t], rules)), target
            )
        # The match keys of the contacts ``process`` creates, by id, for the chunk's write.
        # A new contact's keys are its row's own, unless a rule reads a field that rows do
        # not set (one that saving fills in): then they are computed from the saved record.
        self.created_keys: dict[str, set[str]] = {}
        self.rekey_after_save = any(
            c.field not in PERSON_FIELDS for r in self.rules["contact"] for c in r.criteria
        )

    def _lookup_keys(self, data: dict[str, Any]) -> tuple[dict[str, set[str]], set[str]]:
        """The row's keys to look up each target by, and its own contact keys."""
        keys: dict[str, set[str]] = {}
        own: set[str] = set()
        for target, rules in self.rules.items():
            source = self.same_as[target]
            if source != target:
                keys[target] = keys[source]
                continue
            keys[target], mine = lookup_keys(rules, data)
            if target == "contact":
                own = mine
        return keys, own

    def keys(self, rows: list[tuple[int, dict[str, Any]]]) -> RowKeys:
        """Each row's lookup keys per target and own contact keys: computing only, no
        database, so this may run in another thread."""
        return {number: self._lookup_keys(data) for number, data in rows}

    def _load(self, keys_by_row: dict[int, dict[str, set[str]]]) -> tuple[KeyIndex, Loaded]:
        """Every stored candidate of the chunk's rows: one query for the ids by key, then
        the records."""
        wanted = {t: set().union(*(k[t] for k in keys_by_row.values())) for t in self.rules}
        by_key = engine.ids_by_key(wanted)
        stored_by_id = {
            t: engine.load_records(t, (i for ids in by_key[t].values() for i in ids))
            for t in self.rules
        }
        return by_key, stored_by_id

    def _matches(
        self,
        data: dict[str, Any],
        row_keys: dict[str, set[str]],
        loaded: tuple[KeyIndex, Loaded],
        new_keys: dict[str, list[Contact]],
    ) -> list[engine.Match]:
        """The row's matches, best first: stored records, and the contacts this chunk
        created before it."""
        by_key, stored_by_id = loaded
        matches: list[engine.Match] = []
        for target, rules in self.rules.items():
            found, records = by_key[target], stored_by_id[target]
            ids = {i for k in row_keys[target] for i in found.get(k, ())}
            stored = [records[i] for i in sorted(ids) if i in records]
            if target == "contact":
                seen: set[str] = set()
                for k in row_keys[target]:
                    for c in new_keys.get(k, ()):
                        if c.pk not in seen:
                            seen.add(c.pk)
                            stored.append(c)
            matches += engine.score_candidates(target, rules, data, stored)
        matches.sort(key=engine.rank)
        return matches

    def _new_contact(self, data: dict[str, Any], own: set[str]) -> tuple[Contact, set[str]]:
        """The contact a row with no match creates (not saved yet), and its match keys."""
        contact = Contact(
            **{k: v for k, v in data.items() if k in PERSON_FIELDS},
            phone_e164=record_phone_e164(data.get("phone"), data.get("country")),
        )
        if self.rekey_after_save:
            own = record_keys(self.rules["contact"], engine.record_values(contact))
        return contact, own

    def process(
        self, rows: list[tuple[int, dict[str, Any]]], keys: RowKeys | None = None
    ) -> list[Outcome]:
        """Match the rows (with their ``keys()``, computed here if not given)."""
        keyed = self.keys(rows) if keys is None else keys
        keys_by_row = {number: lookup for number, (lookup, _) in keyed.items()}
        loaded = self._load(keys_by_row)
        new_keys: dict[str, list[Contact]] = {}  # this chunk's new contacts, by key
        self.created_keys = {}
        out: list[Outcome] = []
        for number, data in rows:
            matches = self._matches(data, keys_by_row[number], loaded, new_keys)
            if matches:
                out.append((_matched(number, matches), None))
                continue
            contact, own = self._new_contact(data, keyed[number][1])
            for k in own:
                new_keys.setdefault(k, []).append(contact)
            self.created_keys[contact.pk] = own
            out.append((RowResult(number, "created", "contact", contact.pk), contact))
        return out


def _matched(number: int, matches: list[engine.Match]) -> RowResult:
    """A row that matched: rejected by a block rule, else linked to the best match, and
    flagged for review when it matched several records."""
    blocked = [m for m in matches if m.action == "block"]
    if blocked:
        listed = ", ".join(m.id for m in blocked)
        return RowResult(number, "rejected", reason=f"duplicate_blocked: matches {listed}")
    best = matches[0]
    if len({m.id for m in matches}) > 1:
        reason = "also matches " + ", ".join(m.id for m in matches[1:4])
        return RowResult(number, "flagged", best.object, best.id, best.score, reason)
    return RowResult(number, "linked", best.object, best.id, best.score, "")
