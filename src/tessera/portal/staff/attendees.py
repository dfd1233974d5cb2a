"""/staff/events/<id>/attendees: who is coming, and the door and cancel desk's buttons.

The buttons call the same services as the API (``check_in``, ``cancel_attendee``) and
come back to the list with a message. A cancellation may refund through Stripe, so its
form carries a key that makes a double click cancel (and refund) once.
"""

from __future__ import annotations

from functools import reduce
from hashlib import sha256
from operator import or_
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from tessera.core.errors import NotFound
from tessera.events.cancellation import cancel_attendee
from tessera.events.checkin import check_in
from tessera.events.models import Attendee, Event
from tessera.events.services import attendees_csv, attendees_of, get_event
from tessera.portal.identity import staff_page
from tessera.portal.staff.forms import AttendeeFilter, CancelForm
from tessera.portal.submissions import Claimed, attempt, claim

PER_PAGE = 50
STATUSES = frozenset(Attendee.Status.values)
SEARCHED = ("contact__first_name", "contact__last_name", "contact__email")


def _event(event_id: str) -> Event:
    try:
        return get_event(event_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc


def _status(value: str | None) -> str | None:
    return value if value in STATUSES else None


def search(people: QuerySet[Attendee], query: str) -> QuerySet[Attendee]:
    """Every word must match a first name, a last name or an email ("ada love")."""
    for word in query.split()[:5]:
        people = people.filter(reduce(or_, (Q(**{f"{f}__icontains": word}) for f in SEARCHED)))
    return people


def list_url(event_id: str, query: str = "") -> str:
    url = reverse("staff_attendees", args=[event_id])
    return f"{url}?{query}" if query else url


def _back(request: HttpRequest, event_id: str) -> str:
    """The list as the staff member left it (search, filter, page), never another site."""
    kept = {k: request.POST.get(k, "") for k in ("q", "status", "page")}
    return list_url(event_id, urlencode({k: v for k, v in kept.items() if v}))


@require_GET
@staff_page
def attendees(request: HttpRequest, event_id: str) -> HttpResponse:
    event = _event(event_id)
    filters = AttendeeFilter(request.GET)
    filters.is_valid()  # an unknown status or a long query is ignored, not an error
    query = filters.cleaned_data.get("q", "")
    status = _status(filters.cleaned_data.get("status"))
    people = search(attendees_of(event.pk, status), query).order_by(
        "contact__last_name", "contact__first_name", "pk"
    )
    page = Paginator(people, PER_PAGE).get_page(request.GET.get("page"))
    kept = urlencode({k: v for k, v in (("q", query), ("status", status or "")) if v})
    return render(
        request,
        "portal/staff/attendees.html",
        {
            "section": "staff",
            "event": event,
            "filters": filters,
            "page": page,
            "kept": kept,
            "status": status or "",
            "query": query,
            "registered": Attendee.Status.REGISTERED,
            # A key per row: each cancel button is its own form, acting once.
            "rows": [(a, CancelForm().initial["form_key"]) for a in page.object_list],
        },
    )


@require_GET
@staff_page
def attendees_export(request: HttpRequest, event_id: str) -> HttpResponse:
    event = _event(event_id)
    status = _status(request.GET.get("status"))
    response = HttpResponse(attendees_csv(event.pk, status), content_type="text/csv; charset=utf-8")
    name = f"attendees-{event.pk}{'-' + status if status else ''}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_POST
@staff_page
def attendee_check_in(request: HttpRequest, event_id: str, attendee_id: str) -> HttpResponse:
    event = _event(event_id)
    outcome = attempt(lambda: check_in(attendee_id, expect_event=event.pk))
    if outcome.error is not None:
        messages.error(request, outcome.error.detail, extra_tags="bad")
    else:
        messages.success(request, _("Checked in."), extra_tags="ok")
    return HttpResponseRedirect(_back(request, event.pk))


def _refund_key(claimed: Claimed) -> str:
    """A request key (64 characters at most) unique to this staff member's form."""
    row = claimed.row
    return "staff-cancel:" + sha256(f"{row.user_id}:{row.key}".encode()).hexdigest()[:40]


@require_POST
@staff_page
def attendee_cancel(request: HttpRequest, event_id: str, attendee_id: str) -> HttpResponse:
    event = _event(event_id)
    if not Attendee.objects.filter(pk=attendee_id, event=event).exists():
        raise Http404("no such attendee at this event")
    form = CancelForm(request.POST)
    form.is_valid()  # two optional fields: always valid
    claimed = claim(request.user, form.cleaned_data.get("form_key", ""), "staff_cancel")
    if isinstance(claimed, HttpResponse):
        return claimed  # a second click: where the first went
    refund = bool(form.cleaned_data.get("refund"))
    outcome = attempt(
        # The saga calls Stripe between its commits: no transaction around it. The form's
        # key makes the refund's request key, so a retry never refunds twice.
        lambda: cancel_attendee(attendee_id, refund=refund, request_key=_refund_key(claimed)),
        atomic=False,
    )
    back = _back(request, event.pk)
    if outcome.error is not None:
        claimed.release()  # nothing was done: the form may be sent again
        messages.error(request, outcome.error.detail, extra_tags="bad")
        return HttpResponseRedirect(back)
    refunded = outcome.value[1] if outcome.value else None
    done = _("Ticket cancelled and refunded.") if refunded else _("Ticket cancelled.")
    messages.success(request, done, extra_tags="ok")
    return claimed.done(back)
