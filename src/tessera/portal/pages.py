"""Rendering a member page: the template with the viewer and the menu's section."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tessera.portal.identity import Viewer


def page(
    request: HttpRequest,
    viewer: Viewer,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    section: str = "",
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        template,
        {"viewer": viewer, "section": section, **(context or {})},
        status=status,
    )
