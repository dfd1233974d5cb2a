"""The member's home and wallet pages."""

from __future__ import annotations

from datetime import date

import pygal
from django import forms
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from tessera.core.errors import ValidationFailed
from tessera.core.pagination import paginate
from tessera.events.models import Attendee, Event
from tessera.loyalty.models import WalletTransaction
from tessera.portal import wallet_views
from tessera.portal.charts import CHART_POLICY, STYLE, svg, svg_response
from tessera.portal.earning import open_activities
from tessera.portal.identity import Viewer, member_page, program_member
from tessera.portal.pages import page
from tessera.portal.policy import replacing


class WalletFilterForm(forms.Form):
    type = forms.ChoiceField(
        label=_("Type"), required=False,
        choices=[("", _("All movements")), *WalletTransaction.Type.choices],
    )  # fmt: skip
    since = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if isinstance(since, date) and isinstance(until, date) and until < since:
            self.add_error("until", _("must be on or after the start date"))
        return data

    def filters(self) -> wallet_views.Filters:
        if not self.is_valid():
            return wallet_views.Filters()
        return wallet_views.Filters(
            self.cleaned_data.get("type") or "",
            self.cleaned_data.get("since"),
            self.cleaned_data.get("until"),
        )


@require_GET
@member_page
def home(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    now = timezone.now()
    context: dict[str, object] = {
        "events": list(
            Event.objects.filter(status=Event.Status.LIVE, ends_at__gte=now).order_by("starts_at")[
                :3
            ]
        ),
        "tickets": list(
            Attendee.objects.filter(
                contact=viewer.contact, status=Attendee.Status.REGISTERED, event__ends_at__gte=now
            )
            .select_related("event", "ticket")
            .order_by("event__starts_at")[:3]
        ),
    }
    member = viewer.member
    if member is not None:
        done = member.completions.values("activity_id")
        context.update(
            balance=member.wallet.balance,
            low=member.wallet.balance < member.program.low_balance_threshold,
            expiring=wallet_views.expiring(member, now),
            recent=list(WalletTransaction.objects.filter(member=member).order_by("-pk")[:5]),
            activities=list(
                open_activities(member.program_id, now)
                .exclude(pk__in=done)
                .order_by("-created_at")[:3]
            ),
        )
    return page(request, viewer, "portal/home.html", context, section="home")


@require_GET
@member_page
def wallet(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    member = program_member(viewer)
    form = WalletFilterForm(request.GET or None)
    filters = form.filters()
    try:
        chunk = paginate(
            wallet_views.movements(member, filters),
            limit=wallet_views.PAGE_SIZE,
            cursor=request.GET.get("cursor") or None,
        )
    except ValidationFailed:
        chunk = paginate(
            wallet_views.movements(member, filters), limit=wallet_views.PAGE_SIZE, cursor=None
        )
    query = request.GET.copy()
    query.pop("cursor", None)
    context = {
        "form": form,
        "balance": member.wallet.balance,
        "low": member.wallet.balance < member.program.low_balance_threshold,
        "threshold": member.program.low_balance_threshold,
        "movements": wallet_views.with_details(chunk.items),
        "next_cursor": chunk.next_cursor,
        "query": query.urlencode(),
    }
    if request.headers.get("HX-Request") and request.GET.get("cursor"):
        return page(request, viewer, "portal/wallet_rows.html", context, section="wallet")
    return page(request, viewer, "portal/wallet.html", context, section="wallet")


@require_GET
@member_page
def wallet_csv(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    member = program_member(viewer)
    filters = WalletFilterForm(request.GET or None).filters()
    response = HttpResponse(
        wallet_views.csv_of(wallet_views.movements(member, filters)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = 'attachment; filename="wallet.csv"'
    return response


@require_GET
@replacing(CHART_POLICY)
@member_page
def wallet_chart(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    member = program_member(viewer)
    points = wallet_views.balance_by_day(member)
    chart = pygal.Line(
        style=STYLE, width=800, height=320, show_dots=len(points) <= 60, js=[],
        x_label_rotation=30, show_minor_x_labels=False, title=str(_("Balance over time")),
    )  # fmt: skip
    chart.x_labels = [day.isoformat() for day, _balance in points]
    chart.x_labels_major = chart.x_labels[:: max(1, len(points) // 8)]
    chart.add(str(_("Balance")), [balance for _day, balance in points])
    return svg_response(svg(chart))
