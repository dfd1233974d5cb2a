"""Shared API schema pieces."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, Generic, TypeVar, get_args

from ninja import Schema
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    EmailStr,
    Field,
    Strict,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

T = TypeVar("T")


# JSON has no date type: dates and timestamps are strings in ISO 8601 (RFC 3339) form,
# exactly as the OpenAPI document says. pydantic alone would also read 0 or "1700000000"
# as a Unix timestamp, and a timestamp without an offset as local time.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


def _iso_date_string(value: Any) -> Any:
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


def _timestamp_string(value: Any) -> Any:
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be a timestamp with its offset, e.g. 2026-05-01T09:00:00+02:00")
    return value


UNSTORABLE_MOMENT = "is outside the range of dates that can be stored"


def _representable(value: datetime) -> datetime:
    # The database stores moments in UTC: one at the very edge of the calendar with an
    # offset (0001-01-01T00:00+01:00) has no UTC form, and would fail in the save.
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError(UNSTORABLE_MOMENT) from None
    return value


IsoDate = Annotated[
    date,
    Strict(False),  # parsed from its string form, which strict mode would refuse
    BeforeValidator(_iso_date_string),
    WithJsonSchema({"type": "string", "format": "date"}),
]
Timestamp = Annotated[
    AwareDatetime,
    Strict(False),
    BeforeValidator(_timestamp_string),
    AfterValidator(_representable),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


# No C0 control characters (tab, newline and carriage return aside): PostgreSQL cannot
# store NUL, and no name, address or note legitimately holds the others. Being a pattern,
# the rule is in the OpenAPI schema too, so clients and fuzzers know it.
NO_CONTROL_CHARACTERS = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F]*$"
Text = Annotated[str, StringConstraints(pattern=NO_CONTROL_CHARACTERS)]
# Text that must say something: at least one character that is not white space.
NonBlank = Annotated[
    str,
    StringConstraints(
        pattern=r"^[^\x00-\x08\x0B\x0C\x0E-\x1F]*[^\s\x00-\x1F][^\x00-\x08\x0B\x0C\x0E-\x1F]*$"
    ),
]


def _currency(value: Any) -> Any:
    from tessera.core.money import POINTS, validate_active_currency

    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{3}", value):
        raise ValueError("must be an ISO 4217 code, e.g. USD")
    try:
        code = validate_active_currency(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from exc
    if code == POINTS:
        raise ValueError("PTS is the program's points, not a currency money is paid in")
    return code


def _any_case(code: str) -> str:
    return "".join(f"[{c}{c.lower()}]" for c in code)


def _currency_schema() -> dict[str, Any]:
    from tessera.core.money import active_currencies

    codes = sorted(active_currencies())
    return {
        "type": "string",
        # Any case is accepted (answered upper case), so the exact rule is a pattern; an
        # enum would send clients and fuzzers a narrower contract than the server's.
        "pattern": "^(" + "|".join(_any_case(c) for c in codes) + ")$",
        "description": "An active ISO 4217 code, in any case (answered upper case): "
        + ", ".join(codes),
        "examples": ["USD", "EUR"],
    }


Currency = Annotated[str, BeforeValidator(_currency), WithJsonSchema(_currency_schema())]


# An address as email-validator reads it, and no longer than the column storing it.
Email = Annotated[EmailStr, Field(max_length=254)]


def _non_zero(value: Any) -> Any:
    if value == 0:
        raise ValueError("must not be zero")
    return value


POINTS_LIMIT = 10**12
# A signed change of points: never zero, within ±10^12 (WithJsonSchema replaces the whole
# schema, so the bounds are stated here as well as checked below).
PointsDelta = Annotated[
    int,
    BeforeValidator(_non_zero),
    Field(ge=-POINTS_LIMIT, le=POINTS_LIMIT),
    WithJsonSchema(
        {"type": "integer", "not": {"const": 0}, "minimum": -POINTS_LIMIT, "maximum": POINTS_LIMIT}
    ),
]


class Input(Schema):
    """Base for request bodies. Strict: a number must be a JSON number and a flag a JSON
    boolean ("25.00" is not 2500 cents, 0 is not false), and unknown fields are an error,
    not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_max_length=10_000, strict=True)

    @field_validator("*", mode="before")
    @classmethod
    def _integral_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # JSON has one number type: 25.0 is the integer 25 (JSON Schema says so too), but
        # 25.5, "25" and true are not, and strict mode refuses those.
        if type(value) is float and value.is_integer() and info.field_name:
            annotation = cls.model_fields[info.field_name].annotation
            if int in (annotation, *get_args(annotation)):
                return int(value)
        return value


class _Discriminator(Discriminator):
    # Hashable, so that a union chosen by tag can itself be optional (``X | None``):
    # typing hashes the members of a union, and the error context is a dict.
    def __hash__(self) -> int:
        return id(self)


def by_tag(field: str, tags: Sequence[str] | Mapping[str, str]) -> Discriminator:
    """Choose a union's member by the value of ``field``. Each member is tagged
    ``"<field>=<name>"``, the name being the value itself or, given a mapping, the name it
    maps to (values sharing a member). pydantic puts the tag into error locations; this
    form lets the error renderer drop it, so clients see only the fields they sent."""
    names = dict(tags) if isinstance(tags, Mapping) else {t: t for t in tags}
    allowed = ", ".join(names)

    def tag(value: Any) -> str | None:
        chosen = value.get(field) if isinstance(value, dict) else getattr(value, field, None)
        return f"{field}={names[chosen]}" if isinstance(chosen, str) and chosen in names else None

    return _Discriminator(
        tag,
        custom_error_type="invalid_choice",
        custom_error_message=f"must be one of {allowed}",
        custom_error_context={"field": field},
    )


def exactly_one_of(*fields: str) -> Callable[[dict[str, Any]], None]:
    """``json_schema_extra`` for a body that takes one of several fields, not both: the
    fields are not nullable, and the document says one of them is required."""

    def extra(schema: dict[str, Any]) -> None:
        schema["oneOf"] = [{"required": [f]} for f in fields]
        for name in fields:
            prop = schema.get("properties", {}).get(name, {})
            options = [o for o in prop.pop("anyOf", []) if o.get("type") != "null"]
            if options:
                prop.update(options[0] if len(options) == 1 else {"anyOf": options})
            prop.pop("default", None)

    return extra


def check_exactly_one(model: Schema, *fields: str) -> None:
    """The server's side of ``exactly_one_of``; the error names the field to fix."""
    sent = [f for f in fields if f in model.model_fields_set]
    for name in sent:
        if getattr(model, name) is None:
            raise PydanticCustomError("invalid_combination", "must not be null", {"field": name})
    if len(sent) != 1:
        where = sent[-1] if sent else fields[0]
        message = f"send exactly one of {' or '.join(fields)}"
        raise PydanticCustomError("invalid_combination", message, {"field": where})


class QueryInput(Schema):
    """Base for query parameters, which arrive as text: numbers are read from it."""

    model_config = ConfigDict(extra="forbid", str_max_length=10_000)


class PageQuery(QueryInput):
    """``?limit=&cursor=`` of a paginated list."""

    limit: int | None = Field(None, ge=1, le=100)
    cursor: Text | None = Field(None, max_length=200)


class PageOut(Schema, Generic[T]):
    items: list[T]
    next_cursor: str | None


class ProblemDetail(Schema):
    field: str
    message: str


class Problem(Schema):
    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[ProblemDetail] | None = None


ERRORS: dict[int, Any] = {
    400: Problem,
    401: Problem,
    403: Problem,
    404: Problem,
    409: Problem,
    422: Problem,
}


def reject_unknown_query(request: Any, query_schema: type[Schema]) -> None:
    """ninja drops query parameters it does not know; we answer 422 instead, so a typo such
    as ``?emial=`` is never silently read as "no filter"."""
    from tessera.core.errors import ValidationFailed

    unknown = sorted(set(request.GET) - set(query_schema.model_fields))
    if unknown:
        raise ValidationFailed(
            f"Unknown query parameter(s): {', '.join(unknown)}",
            errors=[{"field": name, "message": "is not a known parameter"} for name in unknown],
        )
