"""Matching endpoints: find duplicates (read-only) and manage the rules."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Union

from django.http import HttpRequest
from ninja import Body, Query, Router, Schema, Status
from pydantic import Field, Tag, create_model

from tessera.api.auth import admin_auth, read_auth
from tessera.api.crm import Company, PersonFieldsPatch, Website
from tessera.api.schemas import (
    ERRORS,
    Input,
    NonBlank,
    PageOut,
    PageQuery,
    Text,
    by_tag,
    reject_unknown_query,
)
from tessera.core.pagination import paginate
from tessera.crm.inputs import MatchQuery, MatchReport
from tessera.crm.matching import services as rules_service
from tessera.crm.matching.comparators import methods_for
from tessera.crm.matching.inputs import CriterionInput, RuleChanges, RuleInput
from tessera.crm.matching.models import MatchingRule
from tessera.crm.search import find_duplicates
from tessera.crm.services import ACCOUNT_FIELDS, PERSON_FIELDS

router = Router(tags=["Matching"])

ObjectName = Literal["contact", "lead", "account"]
LOGIC_PATTERN = r"^[0-9()\sANDORTandort]+$"


class _CriterionBase(Input):
    number: int | None = Field(
        None, ge=1, le=99, description="unique within the rule; default: its position, from 1"
    )
    threshold: int = Field(100, ge=0, le=100)
    match_blank: bool = False


def _criterion_for(name: str) -> type[_CriterionBase]:
    """A criterion on one field: its method is one of those that can compare it."""
    methods = methods_for(name)
    model = create_model(
        f"Criterion_{name}",
        __base__=_CriterionBase,
        field=(Literal[name], Field(...)),  # type: ignore[arg-type]
        method=(Literal[methods], Field(..., description="one that fits the field")),  # type: ignore[arg-type]
    )
    model.__doc__ = f"A criterion on `{name}`: methods {', '.join(methods)}."
    return model


def _criterion_union(fields: tuple[str, ...]) -> Any:
    members = tuple(Annotated[_criterion_for(f), Tag(f"field={f}")] for f in fields)
    return Annotated[Union[members], by_tag("field", list(fields))]  # noqa: UP007


PersonCriterion = _criterion_union(PERSON_FIELDS)
AccountCriterion = _criterion_union(ACCOUNT_FIELDS)
AnyCriterion = _criterion_union(tuple(dict.fromkeys(PERSON_FIELDS + ACCOUNT_FIELDS)))


class MatchRecordIn(PersonFieldsPatch):
    name: Company | None = Field(None, description="account name")
    website: Website | None = None


class MatchIn(Input):
    object: ObjectName
    record: MatchRecordIn


class FieldWeightOut(Schema):
    field: str
    level: str = Field(..., description="how the two values compared: exact, missing, ...")
    weight: float = Field(..., description="log2 of m/u: evidence for (+) or against (-)")


class MatchOut(Schema):
    object: str
    id: str
    score: int
    rule: str
    match_probability: float | None = Field(
        None, description="probabilistic mode: the probability the two are one record"
    )
    weights: list[FieldWeightOut] | None = Field(
        None, description="probabilistic mode: each field's level and weight"
    )


class MatchResultOut(Schema):
    matches: list[MatchOut]
    decision: Literal["link", "create"]
    candidates_examined: int
    candidate_limit_reached: bool


class CriterionOut(Schema):
    number: int
    field: str
    method: str
    threshold: int
    match_blank: bool


class _RuleBase(Input):
    name: NonBlank = Field(..., max_length=120)
    description: Text = Field("", max_length=2000)
    logic: str | None = Field(
        None,
        min_length=1,
        max_length=1000,
        pattern=LOGIC_PATTERN,
        description="criteria numbers with AND, OR, NOT and parentheses, e.g. (1 AND 2) OR 3; "
        "it must name each criterion's number and parse. Required in rules mode; in "
        "probabilistic mode it only chooses the candidates (default: the standard rule's)",
    )
    action: Literal["allow", "block"] = "allow"
    active: bool = True
    candidate_limit: int = Field(200, ge=1, le=10_000)
    mode: Literal["rules", "probabilistic"] = Field(
        "rules",
        description="rules: criteria thresholds and logic decide; probabilistic: the "
        "object's trained Fellegi-Sunter model decides (see match_probability)",
    )
    match_probability: float = Field(
        0.99, ge=0.0, le=1.0, description="probabilistic mode: the lowest probability that "
        "counts as a match",
    )  # fmt: skip

    def as_input(self) -> RuleInput:
        data = self.model_dump(exclude_none=True)
        data["criteria"] = tuple(CriterionInput(**c) for c in data.get("criteria", ()))
        return RuleInput(**data)


class PersonRuleIn(_RuleBase):
    """A rule for contacts or leads: criteria on a person's fields."""

    object: Literal["contact", "lead"]
    criteria: list[PersonCriterion] | None = Field(  # type: ignore[valid-type]
        None, min_length=1, max_length=30, description="required in rules mode"
    )


class AccountRuleIn(_RuleBase):
    """A rule for accounts: criteria on an organisation's fields."""

    object: Literal["account"]
    criteria: list[AccountCriterion] | None = Field(  # type: ignore[valid-type]
        None, min_length=1, max_length=30, description="required in rules mode"
    )


RuleIn = Annotated[
    Annotated[PersonRuleIn, Tag("object=person")] | Annotated[AccountRuleIn, Tag("object=account")],
    by_tag("object", {"contact": "person", "lead": "person", "account": "account"}),
]


class RuleUpdateIn(Input):
    name: NonBlank | None = Field(None, max_length=120)
    description: Text | None = Field(None, max_length=2000)
    logic: str | None = Field(None, min_length=1, max_length=1000, pattern=LOGIC_PATTERN)
    criteria: list[AnyCriterion] | None = Field(  # type: ignore[valid-type]
        None, min_length=1, max_length=30, description="each on a field of the rule's object"
    )
    action: Literal["allow", "block"] | None = None
    active: bool | None = None
    candidate_limit: int | None = Field(None, ge=1, le=10_000)
    mode: Literal["rules", "probabilistic"] | None = None
    match_probability: float | None = Field(None, ge=0.0, le=1.0)

    def as_changes(self) -> RuleChanges:
        """The fields sent; a null is taken as not sent."""
        data = self.model_dump(exclude_none=True)
        if "criteria" in data:
            data["criteria"] = tuple(CriterionInput(**c) for c in data["criteria"])
        return RuleChanges(**data)


class RuleOut(Schema):
    id: str
    object: str
    name: str
    description: str
    logic: str
    action: str
    active: bool
    is_standard: bool
    candidate_limit: int
    mode: str
    match_probability: float
    criteria: list[CriterionOut]
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_criteria(obj: MatchingRule) -> list[Any]:
        return list(obj.criteria.all())


@router.post("/match", response={200: MatchResultOut, **ERRORS}, auth=read_auth)
def match(request: HttpRequest, payload: MatchIn) -> MatchReport:
    """Which existing records this one matches. Writes nothing."""
    return find_duplicates(MatchQuery(payload.object, **payload.record.model_dump()))


@router.get("/matching-rules", response={200: PageOut[RuleOut], **ERRORS}, auth=read_auth)
def list_rules(request: HttpRequest, q: Query[PageQuery]) -> Any:
    reject_unknown_query(request, PageQuery)
    return paginate(
        MatchingRule.objects.prefetch_related("criteria"), limit=q.limit, cursor=q.cursor,
        newest_first=False,
    )  # fmt: skip


@router.post("/matching-rules", response={201: RuleOut, **ERRORS}, auth=admin_auth)
def create_rule(request: HttpRequest, payload: Body[RuleIn]) -> Status:
    return Status(201, rules_service.get_rule(rules_service.create_rule(payload.as_input()).pk))


@router.get("/matching-rules/{rule_id}", response={200: RuleOut, **ERRORS}, auth=read_auth)
def get_rule(request: HttpRequest, rule_id: str) -> MatchingRule:
    return rules_service.get_rule(rule_id)


@router.put("/matching-rules/{rule_id}", response={200: RuleOut, **ERRORS}, auth=admin_auth)
def update_rule(request: HttpRequest, rule_id: str, payload: RuleUpdateIn) -> MatchingRule:
    """Change a rule. Only the fields sent change (send `{"active": false}` to switch it
    off); sending `criteria` replaces them all."""
    return rules_service.update_rule(rule_id, payload.as_changes())


@router.delete("/matching-rules/{rule_id}", response={204: None, **ERRORS}, auth=admin_auth)
def delete_rule(request: HttpRequest, rule_id: str) -> Status:
    rules_service.delete_rule(rule_id)
    return Status(204, None)
