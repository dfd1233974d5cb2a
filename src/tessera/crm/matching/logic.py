"""Rule logic such as ``(1 AND 2) OR (1 AND 3 AND NOT 4)``: parse, check, evaluate, and
expand into OR groups (disjunctive normal form) so every group gets its own match keys."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

_TOKEN = re.compile(r"\s*(?:(\d+)|(AND|OR|NOT)\b|(\()|(\)))", re.IGNORECASE)
MAX_GROUPS = 256  # a pathological expression must not explode key generation
MAX_DEPTH = 32  # parentheses and NOTs nested deeper than any real rule needs


class LogicError(ValueError):
    pass


@dataclass(frozen=True)
class Ref:
    number: int


@dataclass(frozen=True)
class Not:
    term: Node


@dataclass(frozen=True)
class And:
    terms: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    terms: tuple[Node, ...]


Node: TypeAlias = Ref | Not | And | Or


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise LogicError(f"unexpected {text[pos:].strip()[:10]!r} at position {pos + 1}")
        out.append(next(g for g in m.groups() if g is not None).upper())
        pos = m.end()
    return out


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise LogicError("the expression ends too early")
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.or_expr()
        if self.peek() is not None:
            raise LogicError(f"unexpected {self.peek()!r}")
        return node

    def or_expr(self) -> Node:
        terms = [self.and_expr()]
        while self.peek() == "OR":
            self.take()
            terms.append(self.and_expr())
        return terms[0] if len(terms) == 1 else Or(tuple(terms))

    def and_expr(self) -> Node:
        terms = [self.unary()]
        while self.peek() == "AND":
            self.take()
            terms.append(self.unary())
        return terms[0] if len(terms) == 1 else And(tuple(terms))

    def unary(self) -> Node:
        tok = self.take()
        if tok in ("NOT", "("):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise LogicError(f"parentheses and NOTs nest more than {MAX_DEPTH} deep")
            try:
                return Not(self.unary()) if tok == "NOT" else self._parenthesised()
            finally:
                self.depth -= 1
        if tok.isdigit():
            return Ref(int(tok))
        raise LogicError(f"unexpected {tok!r}")

    def _parenthesised(self) -> Node:
        node = self.or_expr()
        if self.peek() != ")":
            raise LogicError("a parenthesis is not closed")
        self.take()
        return node


def parse(text: str) -> Node:
    if not text or not text.strip():
        raise LogicError("the logic is empty")
    return _Parser(_tokens(text)).parse()


def references(node: Node) -> set[int]:
    if isinstance(node, Ref):
        return {node.number}
    if isinstance(node, Not):
        return references(node.term)
    return set().union(*(references(t) for t in node.terms))


def check(text: str, numbers: set[int]) -> Node:
    """Parse and check that the logic names only existing criteria and uses all of them."""
    node = parse(text)
    used = references(node)
    if missing := used - numbers:
        raise LogicError(f"refers to criteria that do not exist: {sorted(missing)}")
    if unused := numbers - used:
        raise LogicError(f"criteria not used in the logic: {sorted(unused)}")
    if frozenset() in _dnf(node):  # also refuses expressions that would explode
        raise LogicError(
            "the logic can hold through NOT alone, which no search can find candidates "
            "for; join each NOT with at least one criterion that must match"
        )
    return node


def evaluate(node: Node, results: Mapping[int, bool]) -> bool:
    if isinstance(node, Ref):
        return results.get(node.number, False)
    if isinstance(node, Not):
        return not evaluate(node.term, results)
    if isinstance(node, And):
        return all(evaluate(t, results) for t in node.terms)
    return any(evaluate(t, results) for t in node.terms)


def groups(node: Node) -> list[frozenset[int]]:
    """The OR groups: sets of criteria that must all match (negated criteria left out, as
    they can never narrow a search). Sorted, without groups that contain another."""
    # An empty group (a branch that holds through NOT alone) would contain in every other
    # one and leave none; ``check`` refuses such logic, and none is kept here either.
    unique = sorted((g for g in _dnf(node) if g), key=lambda g: (len(g), sorted(g)))
    return [g for g in unique if not any(o < g for o in unique)]


def _dnf(node: Node) -> set[frozenset[int]]:
    if isinstance(node, Ref):
        return {frozenset({node.number})}
    if isinstance(node, Not):
        return {frozenset()}
    if isinstance(node, Or):
        out = {g for t in node.terms for g in _dnf(t)}
    else:
        # One factor at a time, checking the size as it grows: (1 OR 2) AND (1 OR 2) AND
        # ... would otherwise build 2^n combinations before any check.
        out = {frozenset()}
        for term in node.terms:
            out = {a | b for a in out for b in _dnf(term)}
            _check_size(out)
    _check_size(out)
    return out


def _check_size(out: set[frozenset[int]]) -> None:
    if len(out) > MAX_GROUPS:
        raise LogicError(f"the logic expands to more than {MAX_GROUPS} OR groups")
