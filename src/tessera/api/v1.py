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
from tessera.core.requeststate import state_of


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
        merge_status_keys(schema)
        document_problems(schema)
        document_links(schema)
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


def merge_status_keys(schema: dict[str, Any]) -> None:
    """One key per status: ninja names a response's status with an integer and
    ``openapi_extra`` with a string, and the two would be written as duplicate JSON keys
    (a reader keeps the last, losing the other's content)."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            merged: dict[str, Any] = {}
            for status, response in operation.get("responses", {}).items():
                earlier = merged.setdefault(str(status), {})
                for key, value in response.items():
                    if isinstance(value, dict) and isinstance(earlier.get(key), dict):
                        earlier[key] = {**earlier[key], **value}
                    else:
                        earlier[key] = value
            if "responses" in operation:
                operation["responses"] = merged


def _op(name: str) -> str:
    return f"tessera_api_{name}"


# What a client does next with what an operation answered: OpenAPI links from a created
# (or read) resource to the operations that take its id. Clients and tools that follow
# links (schemathesis's stateful tests among them) reach past "not found" with them.
# (source operation, status) -> {link name: (target operation, parameters, request body)}
_LinkSpec = tuple[str, dict[str, str], dict[str, Any] | None]
CONTACT = {"contact_id": "$response.body#/id"}
EVENT = {"event_id": "$response.body#/id"}
SAME_EVENT = {"event_id": "$request.path.event_id"}
CHECKOUT_BODY: dict[str, Any] = {
    "buyer": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"},
    "attendees": [
        {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.org",
            "items": [{"item_id": "$response.body#/id", "quantity": 1}],
            "answers": [],
        }
    ],
    "payment": None,
}
_CHECKED_OUT: dict[str, _LinkSpec] = {
    "GetCheckout": (_op("events_get_checkout"), {"checkout_id": "$response.body#/id"}, None),
    "GetInvoice": (_op("invoices_get_invoice"), {"invoice_id": "$response.body#/invoice/id"}, None),
    "GetInvoicePdf": (
        _op("invoices_get_invoice_pdf"),
        {"invoice_id": "$response.body#/invoice/id"},
        None,
    ),
    "RefundInvoice": (
        _op("events_refund_invoice"),
        {"invoice_id": "$response.body#/invoice/id"},
        None,
    ),
    "GetAttendee": (
        _op("events_get_attendee"),
        {"attendee_id": "$response.body#/attendees/0/id"},
        None,
    ),
    "CancelAttendee": (
        _op("events_cancel"),
        {"attendee_id": "$response.body#/attendees/0/id"},
        None,
    ),
    "CheckInAttendee": (
        _op("events_check_in"),
        {"attendee_id": "$response.body#/attendees/0/id"},
        None,
    ),
    "GetTransaction": (
        _op("billing_get_payment"),
        {"transaction_id": "$response.body#/transaction/id"},
        None,
    ),
    "RefundTransaction": (
        _op("billing_refund"),
        {"transaction_id": "$response.body#/transaction/id"},
        None,
    ),
    "GetBuyer": (_op("crm_get_contact"), {"contact_id": "$response.body#/contact_id"}, None),
    "BuyerTimeline": (
        _op("crm_contact_timeline"),
        {"contact_id": "$response.body#/contact_id"},
        None,
    ),
}
FIRST_RULE = {"rule_id": "$response.body#/items/0/id"}
ENROL_BODY: dict[str, Any] = {
    "program_id": "$response.body#/id",
    "contact": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"},
}
MEMBER = {"member_id": "$response.body#/id"}
_ENROLLED: dict[str, _LinkSpec] = {
    "GetMember": (_op("loyalty_get_member"), MEMBER, None),
    "GetWallet": (_op("loyalty_get_wallet"), MEMBER, None),
    "WalletTransactions": (_op("loyalty_wallet_transactions"), MEMBER, None),
    "AdjustPoints": (_op("loyalty_adjust"), MEMBER, {"points": 5000, "reason": "Welcome bonus"}),
    "PlaceOrder": (_op("loyalty_place_order"), MEMBER, None),
    "BuyCredit": (_op("loyalty_purchase_credit"), MEMBER, None),
}
_PAYMENT: dict[str, _LinkSpec] = {
    "GetTransaction": (
        _op("billing_get_payment"),
        {"transaction_id": "$response.body#/transaction_id"},
        None,
    ),
    "RefundTransaction": (
        _op("billing_refund"),
        {"transaction_id": "$response.body#/transaction_id"},
        None,
    ),
    "CaptureTransaction": (
        _op("billing_capture"),
        {"transaction_id": "$response.body#/transaction_id"},
        None,
    ),
    "CancelTransaction": (
        _op("billing_cancel"),
        {"transaction_id": "$response.body#/transaction_id"},
        None,
    ),
}
LINKS: dict[tuple[str, str], dict[str, _LinkSpec]] = {
    (_op("crm_create_contact"), "201"): {
        "GetContact": (_op("crm_get_contact"), CONTACT, None),
        "UpdateContact": (_op("crm_update_contact"), CONTACT, None),
        "ContactTimeline": (_op("crm_contact_timeline"), CONTACT, None),
    },
    (_op("crm_create_lead"), "201"): {
        "GetLead": (_op("crm_get_lead"), {"lead_id": "$response.body#/id"}, None),
        "UpdateLead": (_op("crm_update_lead"), {"lead_id": "$response.body#/id"}, None),
    },
    (_op("crm_create_account"), "201"): {
        "GetAccount": (_op("crm_get_account"), {"account_id": "$response.body#/id"}, None),
        "UpdateAccount": (_op("crm_update_account"), {"account_id": "$response.body#/id"}, None),
    },
    (_op("matching_create_rule"), "201"): {
        "GetRule": (_op("matching_get_rule"), {"rule_id": "$response.body#/id"}, None),
        "UpdateRule": (_op("matching_update_rule"), {"rule_id": "$response.body#/id"}, None),
        "DeleteRule": (_op("matching_delete_rule"), {"rule_id": "$response.body#/id"}, None),
    },
    (_op("matching_list_rules"), "200"): {
        "GetFirstRule": (_op("matching_get_rule"), FIRST_RULE, None),
        "UpdateFirstRule": (_op("matching_update_rule"), FIRST_RULE, None),
        "DeleteFirstRule": (_op("matching_delete_rule"), FIRST_RULE, None),
    },
    (_op("loyalty_create_program"), "201"): {
        "GetProgram": (_op("loyalty_get_program"), {"program_id": "$response.body#/id"}, None),
        "EnrolMember": (_op("loyalty_enroll"), {}, ENROL_BODY),
        "AddProduct": (_op("loyalty_create_product"), {}, {"program_id": "$response.body#/id"}),
    },
    (_op("loyalty_enroll"), "201"): _ENROLLED,
    (_op("loyalty_enroll"), "200"): _ENROLLED,
    (_op("events_create_event"), "201"): {
        "GetEvent": (_op("events_get_event"), EVENT, None),
        "UpdateEvent": (_op("events_update_event"), EVENT, None),
        "AddItem": (_op("events_add_item"), EVENT, None),
        "AddQuestion": (_op("events_add_question"), EVENT, None),
        "AddPromoCode": (_op("events_add_promo_code"), EVENT, None),
        "ListAttendees": (_op("events_list_attendees"), EVENT, None),
        "CheckOut": (_op("events_check_out"), EVENT, None),
        "JoinWaitlist": (_op("events_join_waitlist"), EVENT, None),
    },
    (_op("events_add_item"), "201"): {
        "CheckOutTheItem": (_op("events_check_out"), SAME_EVENT, CHECKOUT_BODY),
        "WaitForTheItem": (
            _op("events_join_waitlist"),
            SAME_EVENT,
            {"item_id": "$response.body#/id"},
        ),
        "GetEvent": (_op("events_get_event"), SAME_EVENT, None),
    },
    (_op("events_check_out"), "201"): _CHECKED_OUT,
    (_op("events_check_out"), "202"): _CHECKED_OUT,
    (_op("events_cancel"), "200"): {
        "GetAttendee": (
            _op("events_get_attendee"),
            {"attendee_id": "$request.path.attendee_id"},
            None,
        ),
    },
    (_op("events_refund_invoice"), "201"): {
        "GetInvoice": (
            _op("invoices_get_invoice"),
            {"invoice_id": "$request.path.invoice_id"},
            None,
        ),
        "RefundAgain": (
            _op("events_refund_invoice"),
            {"invoice_id": "$request.path.invoice_id"},
            None,
        ),
    },
    (_op("loyalty_place_order"), "201"): {
        "GetOrder": (_op("loyalty_get_order"), {"order_id": "$response.body#/id"}, None),
        "RefundOrder": (_op("loyalty_refund"), {"order_id": "$response.body#/id"}, None),
    },
    (_op("loyalty_purchase_credit"), "201"): _PAYMENT,
    (_op("loyalty_purchase_credit"), "202"): _PAYMENT,
}


def document_links(schema: dict[str, Any]) -> None:
    """Add ``LINKS`` to the responses they start from (only to operations present)."""
    present = {
        operation.get("operationId")
        for operations in schema.get("paths", {}).values()
        for operation in operations.values()
    }
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                wanted = LINKS.get((operation.get("operationId", ""), str(status)), {})
                links = {
                    name: {
                        "operationId": target,
                        "parameters": dict(parameters),
                        **({"requestBody": body} if body is not None else {}),
                    }
                    for name, (target, parameters, body) in wanted.items()
                    if target in present
                }
                if links:
                    response["links"] = links


def document_problems(schema: dict[str, Any]) -> None:
    """Say what we really send for errors: problem+json, and a 500 may happen anywhere."""
    problem = {"$ref": "#/components/schemas/Problem"}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.setdefault("500", {"description": "Internal Server Error"})
            if operation.get("security"):
                # A client past its allowance of failed keys gets 429 on any keyed call.
                responses.setdefault("429", {"description": "Too Many Requests"})
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
    state = state_of(request)
    state.keep_writes = state.keep_writes or exc.keeps_writes
    state.replay_error = state.replay_error or exc.replay_on_retry
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
