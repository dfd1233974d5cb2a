"""What follows an event's page: joining its waitlist, a checkout's confirmation with the
tickets and downloads, finishing 3-D Secure, and the event's calendar entry."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from tessera.billing.gateways.base import GatewayUnavailable
from tessera.billing.models import Transaction
from tessera.billing.services import settle_from_gateway
from tessera.events import waitlist as waiting
from tessera.events.documents import CalendarEvent, event_ics
from tessera.events.models import Attendee, Checkout, Event
from tessera.events.requests import PersonIn
from tessera.portal.event_forms import WaitlistForm
from tessera.portal.identity import Viewer, member_page
from tessera.portal.pages import page
from tessera.portal.submissions import Claimed, attempt, claim
from tessera.portal.views.events import SECRET, live_event
from tessera.portal.views.tickets import ticket_qr


def owned_checkout(viewer: Viewer, checkout_id: str) -> Checkout:
    """The viewer's checkout (they bought it, or their membership paid), else 404."""
    mine = Q(buyer=viewer.contact) | Q(member__contact=viewer.contact)
    found = (
        Checkout.objects.filter(mine, pk=checkout_id)
        .select_related("event", "invoice", "transaction")
        .first()
    )
    if found is None:
        raise Http404("no such checkout")
    return found


@member_page
@require_GET
def checkout_page(request: HttpRequest, viewer: Viewer, checkout_id: str) -> HttpResponse:
    checkout = owned_checkout(viewer, checkout_id)
    attendees = checkout.attendees.select_related("contact", "ticket").order_by("pk")
    shown = (Attendee.Status.REGISTERED, Attendee.Status.CHECKED_IN)
    tickets = [(a, ticket_qr(a.code) if a.status in shown and a.code else "") for a in attendees]
    secret = ""
    if checkout.status == Checkout.Status.REQUIRES_ACTION:
        secret = request.session.get(SECRET.format(checkout.pk), "")
    invoice = checkout.invoice
    context = {
        "checkout": checkout,
        "event": checkout.event,
        "tickets": tickets,
        "client_secret": secret,
        "invoice": invoice if invoice is not None and invoice.status in ("open", "paid") else None,
    }
    return page(request, viewer, "portal/events/checkout.html", context, section="events")


@member_page
@require_POST
def confirm_checkout(request: HttpRequest, viewer: Viewer, checkout_id: str) -> HttpResponse:
    """After 3-D Secure in the browser: ask Stripe how it ended, and settle the checkout."""
    checkout = owned_checkout(viewer, checkout_id)
    txn_id = checkout.transaction_id or (
        Transaction.objects.filter(purpose="checkout", purpose_id=checkout.pk)
        .values_list("pk", flat=True)
        .first()
    )
    if txn_id and not checkout.is_final:
        try:
            settle_from_gateway(txn_id)
        except GatewayUnavailable:
            messages.warning(
                request,
                _("We could not reach the card processor; this page updates once it answers."),
            )
    request.session.pop(SECRET.format(checkout.pk), None)
    return HttpResponseRedirect(f"/events/checkouts/{checkout.pk}")


@member_page
@require_GET
def event_calendar(request: HttpRequest, viewer: Viewer, event_id: str) -> HttpResponse:
    """The event as a calendar entry: a live event, or one the viewer holds a ticket for."""
    mine = Attendee.objects.filter(event_id=event_id, contact=viewer.contact).order_by("pk").first()
    event = get_object_or_404(
        Event.objects.filter(Q(status=Event.Status.LIVE) | Q(pk=mine.event_id if mine else "")),
        pk=event_id,
    )
    entry = CalendarEvent.of(
        event,
        mine.pk if mine else viewer.contact.pk,
        url=request.build_absolute_uri(f"/events/{event.pk}"),
    )
    response = HttpResponse(event_ics(entry, now=timezone.now()), content_type="text/calendar")
    response["Content-Disposition"] = f'attachment; filename="{event.pk}.ics"'
    return response


@member_page
@require_POST
def join_waitlist(request: HttpRequest, viewer: Viewer, event_id: str) -> HttpResponse:
    event = live_event(event_id)
    form = WaitlistForm(request.POST)
    back = f"/events/{event.pk}"
    if not form.is_valid():
        return HttpResponseRedirect(back)
    claimed = claim(request.user, form.cleaned_data["form_key"], "event_waitlist")
    if not isinstance(claimed, Claimed):
        return claimed
    c = viewer.contact
    person = PersonIn(c.first_name, c.last_name or c.first_name, c.email)
    result = attempt(lambda: waiting.join_waitlist(event.pk, form.cleaned_data["item_id"], person))
    if result.error is not None:
        claimed.release()
        messages.error(request, result.error.detail)
        return HttpResponseRedirect(back)
    entry = result.value.entry if result.value else None
    name = entry.item.name if entry else ""
    messages.success(
        request,
        _("You are on the waitlist for %(item)s. We will email you when a place is free.")
        % {"item": name},
    )
    return claimed.done(back)
