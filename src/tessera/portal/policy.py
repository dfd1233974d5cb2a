"""django-csp's per-view decorators, typed for views with URL arguments.

django-csp types its decorators for ``view(request)`` returning ``HttpResponseBase``; these
keep a view's own signature so ``staff_page`` and the URL conf still type-check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, cast

from csp.decorators import csp_replace, csp_update
from django.http import HttpResponse

P = ParamSpec("P")
View = Callable[P, HttpResponse]


def replacing(config: dict[str, Any]) -> Callable[[View[P]], View[P]]:
    """This view's responses replace the named directives of the site's policy."""

    def decorate(view: View[P]) -> View[P]:
        return cast("View[P]", csp_replace(config)(cast(Any, view)))

    return decorate


def adding(config: dict[str, Any]) -> Callable[[View[P]], View[P]]:
    """This view's responses add sources to the named directives of the site's policy."""

    def decorate(view: View[P]) -> View[P]:
        return cast("View[P]", csp_update(config)(cast(Any, view)))

    return decorate
