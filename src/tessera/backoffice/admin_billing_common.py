"""What the back office's billing pages share: amounts, links, and the read-only bases.

Billing rows are the record of real money: the billing services, the webhook and the
reconciler write them, staff only read them. A wrong payment is refunded and an issued
invoice is credited, never edited or deleted (deleting one would also orphan its ledger
postings), so every page and inline here refuses to add, change or delete.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.db.models import Model
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from tessera.core.money import Money

# A read-only column of a ModelAdmin or inline: called as a method with the row.
Column = Callable[[Any, Any], str]


def money(amount: int, currency: str) -> str:
    try:
        return Money(amount, currency).format(settings.TESSERA_LOCALE)
    except (TypeError, ValueError):
        # A code Babel does not know must not break the page that shows the record.
        return f"{amount} {currency}"


def change_url(obj: Model) -> str:
    # quote() as the admin's own links do: ids contain "_", its escape character.
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)])


def changelist_url(model: type[Model], **params: str) -> str:
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def link(obj: Model | None, text: object = None) -> str:
    if obj is None:
        return "-"
    return format_html('<a href="{}">{}</a>', change_url(obj), obj if text is None else text)


def money_column(
    field: str, description: str, *, currency: str = "currency", ordering: str | None = None
) -> Column:
    """A column showing the row's ``field`` as money, in the currency found at the dotted
    path ``currency`` from the row (``invoice.currency`` on an invoice line)."""
    amount_of, currency_of = attrgetter(field), attrgetter(currency)

    @admin.display(description=description, ordering=ordering)
    def column(model_admin: object, obj: Model) -> str:
        return money(amount_of(obj), currency_of(obj))

    return column


def link_column(path: str, description: str, *, ordering: str | None = None) -> Column:
    """A column linking to the record at the dotted path ``path`` from the row."""
    target_of = attrgetter(path)

    @admin.display(description=description, ordering=ordering)
    def column(model_admin: object, obj: Model) -> str:
        return link(target_of(obj))

    return column


class NoWrites:
    """Refuses adding, changing and deleting. Without the delete permission Django also
    refuses the delete view (403) and drops "delete selected"."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class MoneyRecordAdmin(NoWrites, admin.ModelAdmin):
    """Like ``ReadOnlyAdmin`` in admin.py, and never deleted either."""


class ReadOnlyInline(NoWrites, admin.TabularInline):
    extra = 0
    can_delete = False
