"""Shared API schema pieces."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Generic, TypeVar, get_args

from ninja import Schema
from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

T = TypeVar("T")


def _iso_date_string(value: Any) -> Any:
    # pydantic would read 0 as 1970-01-01 (a Unix timestamp); a date must be "YYYY-MM-DD".
    if not isinstance(value, str | date):
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


IsoDate = Annotated[
    date,
    BeforeValidator(_iso_date_string),
    WithJsonSchema({"type": "string", "format": "date"}),
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
    from tessera.core.money import validate_currency

    if not isinstance(value, str) or value != value.upper():
        raise ValueError("must be an upper-case ISO 4217 code, e.g. USD")
    try:
        return validate_currency(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from exc


def _iso_currencies() -> list[str]:
    from babel.numbers import list_currencies

    return sorted(list_currencies())


Currency = Annotated[
    str,
    BeforeValidator(_currency),
    WithJsonSchema({"type": "string", "enum": _iso_currencies(), "description": "ISO 4217"}),
]


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
    """Base for request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_max_length=10_000)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic reads true as 1; JSON says a boolean is not a number.
        if isinstance(value, bool) and info.field_name:
            annotation = cls.model_fields[info.field_name].annotation
            if bool not in (annotation, *get_args(annotation)):
                raise ValueError("must not be a boolean")
        return value


class PageQuery(Input):
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
