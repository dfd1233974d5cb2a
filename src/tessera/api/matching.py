"""Matching endpoints: find duplicates (read-only) and manage the rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from tessera.api.auth import admin_auth, read_auth
from tessera.api.schemas import (
    ERRORS,
    Input,
    IsoDate,
    NonBlank,
    PageOut,
    PageQuery,
    Text,
    reject_unknown_query,
)
from tessera.core.pagination import paginate
from tessera.crm.matching import engine
from tessera.crm.matching import services as rules_service
from tessera.crm.matching.models import MatchingRule
from tessera.crm.services import match_summary

router = Router(tags=["Matching"])

Method = Literal[
    "exact", "email", "first_name", "last_name", "company", "title", "city", "phone",
    "street", "postal_code", "website", "edit_distance", "jaro_winkler",
]  # fmt: skip
ObjectName = Literal["contact", "lead", "account"]
FieldName = Literal[
    "first_name", "last_name", "email", "phone", "company", "title", "street", "city",
    "postal_code", "country", "birthdate", "name", "website",
]  # fmt: skip
LOGIC_PATTERN = r"^[0-9()\sANDORTandort]+$"


class MatchRecordIn(Input):
    first_name: Text | None = Field(None, max_length=120)
    last_name: Text | None = Field(None, max_length=120)
    email: Text | None = Field(None, max_length=254)
    phone: Text | None = Field(None, max_length=40)
    company: Text | None = Field(None, max_length=255)
    title: Text | None = Field(None, max_length=128)
    street: Text | None = Field(None, max_length=255)
    city: Text | None = Field(None, max_length=120)
    postal_code: Text | None = Field(None, max_length=32)
    country: Text | None = Field(None, max_length=80)
    birthdate: IsoDate | None = None
    name: Text | None = Field(None, max_length=255, description="account name")
    website: Text | None = Field(None, max_length=255)


class MatchIn(Input):
    object: ObjectName
    record: MatchRecordIn


class MatchOut(Schema):
    object: str
    id: str
    score: int
    rule: str


class MatchResultOut(Schema):
    matches: list[MatchOut]
    decision: Literal["link", "create"]
    candidates_examined: int
    candidate_limit_reached: bool


class CriterionIn(Input):
    number: int | None = Field(None, ge=1, le=99)
    field: FieldName = Field(..., description="a field of the rule's object")
    method: Method
    threshold: int = Field(100, ge=0, le=100)
    match_blank: bool = False


class CriterionOut(Schema):
    number: int
    field: str
    method: str
    threshold: int
    match_blank: bool


class RuleIn(Input):
    object: ObjectName
    name: NonBlank = Field(..., max_length=120)
    description: Text = Field("", max_length=2000)
    logic: str = Field(
        ...,
        min_length=1,
        max_length=1000,
        pattern=LOGIC_PATTERN,
        description="criteria numbers with AND, OR, NOT and parentheses, e.g. (1 AND 2) OR 3",
    )
    criteria: list[CriterionIn] = Field(..., min_length=1, max_length=30)
    action: Literal["allow", "block"] = "allow"
    active: bool = True
    candidate_limit: int = Field(200, ge=1, le=10_000)


class RuleUpdateIn(Input):
    name: NonBlank | None = Field(None, max_length=120)
    description: Text | None = Field(None, max_length=2000)
    logic: str | None = Field(None, min_length=1, max_length=1000, pattern=LOGIC_PATTERN)
    criteria: list[CriterionIn] | None = Field(None, min_length=1, max_length=30)
    action: Literal["allow", "block"] | None = None
    active: bool | None = None
    candidate_limit: int | None = Field(None, ge=1, le=10_000)


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
    criteria: list[CriterionOut]
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_criteria(obj: MatchingRule) -> list[Any]:
        return list(obj.criteria.all())


@router.post("/match", response={200: MatchResultOut, **ERRORS}, auth=read_auth)
def match(request: HttpRequest, payload: MatchIn) -> dict[str, Any]:
    """Which existing records this one matches. Writes nothing."""
    record = payload.record.model_dump(exclude_none=True)
    result = engine.find_matches(payload.object, record)
    return {
        "matches": [match_summary(m) for m in result.matches],
        "decision": result.decision,
        "candidates_examined": result.candidates_examined,
        "candidate_limit_reached": result.limit_reached,
    }


@router.get("/matching-rules", response={200: PageOut[RuleOut], **ERRORS}, auth=read_auth)
def list_rules(request: HttpRequest, q: Query[PageQuery]) -> Any:
    reject_unknown_query(request, PageQuery)
    return paginate(
        MatchingRule.objects.prefetch_related("criteria"), limit=q.limit, cursor=q.cursor,
        newest_first=False,
    )  # fmt: skip


@router.post("/matching-rules", response={201: RuleOut, **ERRORS}, auth=admin_auth)
def create_rule(request: HttpRequest, payload: RuleIn) -> Status:
    data = payload.model_dump()
    return Status(201, rules_service.get_rule(rules_service.create_rule(data).pk))


@router.get("/matching-rules/{rule_id}", response={200: RuleOut, **ERRORS}, auth=read_auth)
def get_rule(request: HttpRequest, rule_id: str) -> MatchingRule:
    return rules_service.get_rule(rule_id)


@router.put("/matching-rules/{rule_id}", response={200: RuleOut, **ERRORS}, auth=admin_auth)
def update_rule(request: HttpRequest, rule_id: str, payload: RuleUpdateIn) -> MatchingRule:
    """Change a rule. Only the fields sent change (send `{"active": false}` to switch it
    off); sending `criteria` replaces them all."""
    return rules_service.update_rule(rule_id, payload.model_dump(exclude_none=True))


@router.delete("/matching-rules/{rule_id}", response={204: None, **ERRORS}, auth=admin_auth)
def delete_rule(request: HttpRequest, rule_id: str) -> Status:
    rules_service.delete_rule(rule_id)
    return Status(204, None)
