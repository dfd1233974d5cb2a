"""Amounts as people read them, in the configured locale (Babel): ``{{ n|points }}`` is
"2,500 points", ``{{ amount|money:currency }}`` turns minor units into "$25.00"."""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings

from tessera.core.money import Money, format_points

register = template.Library()


@register.filter
def points(value: Any) -> str:
    return format_points(int(value), settings.TESSERA_LOCALE)


@register.filter
def money(value: Any, currency: str) -> str:
    return Money(int(value), currency).format(settings.TESSERA_LOCALE)
