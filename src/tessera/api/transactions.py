"""Which API operations run outside the request-wide transaction.

The idempotency middleware runs each write in one database transaction, so the stored
answer and the writes commit together. An operation that calls Stripe between its own
commits (a payment, a refund, a checkout) must not: a transaction held open across a
network call holds its row locks for as long as Stripe takes, and a rollback after Stripe
charged would forget a real payment (rule 4). Such a handler says so with
``@own_transactions``, beside the route it declares; the middleware asks the operation
itself, so no list of names has to be kept in step with the routes."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from django.http import HttpRequest
from django.urls import Resolver404, resolve

View = TypeVar("View", bound=Callable[..., Any])
MARK = "tessera_own_transactions"


def own_transactions(view: View) -> View:
    """Mark an API handler as committing its own steps (see the module's docstring)."""
    setattr(view, MARK, True)
    return view


def runs_own_transactions(request: HttpRequest) -> bool:
    """Whether the operation ``request`` reaches is marked ``@own_transactions``."""
    handler = handler_for(request)
    return handler is not None and getattr(handler, MARK, False) is True


def handler_for(request: HttpRequest) -> Callable[..., Any] | None:
    """The handler django-ninja will run for ``request``: its URL resolves to one view
    per path, which picks the operation by method (the handler is that operation's)."""
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return None
    return _operation_handler(match.func, request.method or "")


@cache
def _operation_handler(view: Callable[..., Any], method: str) -> Callable[..., Any] | None:
    # Views are made once, when the URLs are: the lookup is done once per route and method,
    # not on every write.
    path_view = inspect.getclosurevars(view).nonlocals.get("self")
    for operation in getattr(path_view, "operations", ()):
        if method in operation.methods:
            handler: Callable[..., Any] = operation.view_func
            return handler
    return None
