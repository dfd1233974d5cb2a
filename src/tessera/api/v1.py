"""The public REST API, version 1: one NinjaAPI, one router per domain."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db import DataError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser

from tessera.api import billing, crm, events, invoices, loyalty, matching
from tessera.api.auth import ApiKeyAuth
from tessera.api.problems import (
    log_unexpected,
    problem_for_status,
    problem_response,
    pydantic_errors,
)
from tessera.api.schemas import Problem
from tessera.core.errors import (
    PROBLEM_CONTENT_TYPE,
    MalformedRequest,
    NotFound,
    ProblemError,
    Unauthorized,
    ValidationFailed,
)
from tessera.core.models import SCOPE_ADMIN


class StrictJsonParser(Parser):
    """Request bodies must be a JSON object; anything else is a 400 we can explain."""

    def parse_body(self, request: HttpRequest) -> dict:
        import json

        try:
            data = json.loads(request.body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise MalformedRequest(f"The body is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise MalformedRequest("The body must be a JSON object.")
        return data


class TesseraAPI(NinjaAPI):
    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: Any = None) -> Any:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        document_problems(schema)
        document_scopes(schema, self.operation_scopes())
        return schema

    def operation_scopes(self) -> dict[str, str]:
        """operationId -> the API-key scope the operation needs."""
        scopes: dict[str, str] = {}
        for _prefix, router in self._routers:
            for path_view in router.path_operations.values():
                for operation in path_view.operations:
                    op_id = operation.operation_id or self.get_openapi_operation_id(operation)
                    for auth in operation.auth_callbacks or ():
                        if isinstance(auth, ApiKeyAuth):
                            scopes[op_id] = auth.scope
        return scopes


def document_scopes(schema: dict[str, Any], scopes: dict[str, str]) -> None:
    """Say which scope each operation needs: as the security requirement's roles (which
    OpenAPI 3.1 allows for any scheme), in the description, and as ``x-required-scope``."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            scope = scopes.get(operation.get("operationId", ""))
            if scope is None:
                continue
            operation["security"] = [{name: [scope]} for r in operation.get("security", [])
                                     for name in r]  # fmt: skip
            operation["x-required-scope"] = scope
            implied = " (or `admin`)" if scope != SCOPE_ADMIN else ""
            note = f"Needs an API key with the `{scope}` scope{implied}."
            description = operation.get("description", "")
            operation["description"] = f"{description}\n\n{note}".strip()


def document_problems(schema: dict[str, Any]) -> None:
    """Say what we really send for errors: problem+json, and a 500 may happen anywhere."""
    problem = {"$ref": "#/components/schemas/Problem"}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.setdefault("500", {"description": "Internal Server Error"})
            for status, response in responses.items():
                if int(status) >= 400:
                    response["content"] = {PROBLEM_CONTENT_TYPE: {"schema": problem}}
                    response.setdefault("description", "Error")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("Problem", Problem.json_schema())


api = TesseraAPI(
    title="Tessera API",
    version="1.0.0",
    description=(
        "Membership platform: CRM with duplicate matching, event checkout, loyalty wallet. "
        "Authenticate with `Authorization: Bearer <api key>`. Every POST accepts an "
        "`Idempotency-Key` header. Errors are `application/problem+json`."
    ),
    urls_namespace="api-v1",
    parser=StrictJsonParser(),
    openapi_url="/openapi.json",
    docs_url="/docs",
)
api.add_router("", crm.router)
api.add_router("", matching.router)
api.add_router("", loyalty.router)
api.add_router("", billing.router)
api.add_router("", invoices.router)
api.add_router("", events.router)


@api.exception_handler(ProblemError)
def _problem(request: HttpRequest, exc: ProblemError) -> HttpResponse:
    if exc.keeps_writes:
        request._tessera_keep_writes = True  # type: ignore[attr-defined]
    if exc.replay_on_retry:
        request._tessera_replay_error = True  # type: ignore[attr-defined]
    return problem_response(exc)


@api.exception_handler(ValidationError)
def _validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = pydantic_errors(exc.errors)
    detail = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors)
    return problem_response(ValidationFailed(detail, errors=errors))


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return problem_response(Unauthorized("Send a valid API key: `Authorization: Bearer <key>`."))


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    cause = exc.__cause__
    if isinstance(cause, ProblemError):  # raised inside ninja's body parsing
        return problem_response(cause)
    return problem_response(problem_for_status(exc.status_code, exc.message))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return problem_response(NotFound(str(exc) or "Not found"))


@api.exception_handler(ObjectDoesNotExist)
def _does_not_exist(request: HttpRequest, exc: ObjectDoesNotExist) -> HttpResponse:
    return problem_response(NotFound(str(exc) or "Not found"))


@api.exception_handler(DataError)
def _data_error(request: HttpRequest, exc: DataError) -> HttpResponse:
    # A value the database refuses (e.g. NUL in a path parameter): the request's fault.
    return problem_response(
        ValidationFailed("A value contains characters or a size the database cannot store.")
    )


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    log_unexpected(request, exc)
    return problem_response(
        problem_for_status(500, "An unexpected error occurred; nothing was changed.")
    )
