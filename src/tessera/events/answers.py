"""Answers to an event's questions, checked by type before a checkout writes anything.

A question asked per attendee applies to the attendees holding one of its items (all of
them when it names none); a question asked once per order is answered at the top of the
checkout. The value stored is the normalised one (an email lower-cased, a phone in E.164,
a date as YYYY-MM-DD).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from typing import Any, Protocol

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from tessera.events.models import Question
from tessera.events.requests import AnswerIn

MAX_TEXT = 5000


class Collects(Protocol):
    def add(self, path: str, message: str) -> None: ...


class Refused(ValueError):
    pass


def _text(q: Question, value: Any) -> Any:
    if not isinstance(value, str):
        raise Refused("must be text")
    if len(value) > MAX_TEXT:
        raise Refused(f"at most {MAX_TEXT} characters")
    return value.strip()


def _number(q: Question, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Refused("must be a number")
    return value


def _select(q: Question, value: Any) -> Any:
    if not isinstance(value, str) or value not in q.options:
        raise Refused(f"must be one of {', '.join(map(str, q.options))}")
    return value


def _multiselect(q: Question, value: Any) -> Any:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Refused("must be a list of options")
    unknown = [v for v in value if v not in q.options]
    if unknown:
        raise Refused(f"{', '.join(unknown)} not among {', '.join(map(str, q.options))}")
    return sorted(set(value), key=value.index)


def _checkbox(q: Question, value: Any) -> Any:
    if not isinstance(value, bool):
        raise Refused("must be true or false")
    if q.required and not value:
        raise Refused("must be ticked")
    return value


def _date(q: Question, value: Any) -> Any:
    if not isinstance(value, str) or len(value) != len("2026-01-31"):
        raise Refused("must be a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise Refused("must be a date written YYYY-MM-DD") from exc


def _email(q: Question, value: Any) -> Any:
    try:
        validate_email(value if isinstance(value, str) else "")
    except ValidationError as exc:
        raise Refused("must be an email address") from exc
    return str(value).strip().lower()


def _phone(q: Question, value: Any) -> Any:
    try:
        number = phonenumbers.parse(str(value), settings.TESSERA_DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise Refused("must be a phone number") from exc
    if not isinstance(value, str) or not phonenumbers.is_possible_number(number):
        raise Refused("must be a phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


CHECKS: dict[str, Callable[[Question, Any], Any]] = {
    "text": _text,
    "number": _number,
    "select": _select,
    "multiselect": _multiselect,
    "checkbox": _checkbox,
    "date": _date,
    "email": _email,
    "phone": _phone,
}


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == []


def _check(
    asked: list[Question], given: Iterable[AnswerIn], where: str, problems: Collects
) -> dict[str, object]:
    """The normalised answers, keyed by question id; problems go to ``problems``."""
    by_id = {q.pk: q for q in asked}
    out: dict[str, Any] = {}
    for i, answer in enumerate(given):
        path = f"{where}answers.{i}"
        question = by_id.get(answer.question_id)
        if question is None:
            problems.add(f"{path}.question_id", "no such question here")
            continue
        if answer.question_id in out:
            problems.add(f"{path}.question_id", "answered twice")
            continue
        if _blank(answer.value):
            continue  # a blank answer is no answer; required ones are caught below
        try:
            out[question.pk] = CHECKS[question.type](question, answer.value)
        except Refused as exc:
            problems.add(f"{path}.value", str(exc))
            out[question.pk] = None
    for question in asked:
        if question.required and question.pk not in out:
            problems.add(f"{where}answers", f"{question.label!r} needs an answer")
    return {k: v for k, v in out.items() if v is not None}


def check_attendee_answers(
    questions: list[Question],
    bought: set[str],
    given: Iterable[AnswerIn],
    where: str,
    problems: Collects,
) -> dict[str, object]:
    """An attendee's answers, for the questions that apply to what they bought."""
    asked = [
        q
        for q in questions
        if q.per_attendee and (not (ids := {i.pk for i in q.items.all()}) or ids & bought)
    ]
    return _check(asked, given, f"{where}.", problems)


def check_order_answers(
    questions: list[Question], given: Iterable[AnswerIn], problems: Collects
) -> dict[str, object]:
    return _check([q for q in questions if not q.per_attendee], given, "", problems)
