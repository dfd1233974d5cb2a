"""A member's tickets: the list with QR codes, one ticket, cancelling one, and the invoices
and credit notes of what they bought.

Every record is looked up by its id *and* its owner in one query, so another person's id
answers 404 exactly like an id that does not exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.contrib import messages
from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from tessera.billing.credit_notes import credited_amount
from tessera.billing.invoice_pdf import invoice_pdf as render_pdf
from tessera.billing.models import Invoice, InvoiceLine
from tessera.events.cancellation import cancel_attendee
from tessera.events.documents import qr_svg
from tessera.events.models import Attendee, Checkout
from tessera.portal.event_forms import CancelForm, service_key
from tessera.portal.identity import Viewer, member_page
from tessera.portal.pages import page
from tessera.portal.submissions import Claimed, attempt, claim
from tessera.portal.templatetags.portal import money, pts

COMPLETED = (Checkout.Status.PAID, Checkout.Status.FREE)
VALID = (Attendee.Status.REGISTERED, Attendee.Status.CHECKED_IN)
ISSUED = (Invoice.Status.OPEN, Invoice.Status.PAID)
SIZE = re.compile(r'^<svg width="(\d+)" height="(\d+)"')


def ticket_qr(code: str) -> str:
    """The ticket's QR as inline SVG (no style attribute: the CSP allows it) that scales:
    its fixed size becomes a viewBox, so the page's CSS sets how large it shows."""
    return SIZE.sub(r'<svg viewBox="0 0 \1 \2" focusable="false"', qr_svg(code), count=1)


def owned_attendees(viewer: Viewer) -> QuerySet[Attendee]:
    """Tickets of completed checkouts the viewer holds or bought (a failed checkout's
    attendees are kept, cancelled, for the record: they were never tickets)."""
    contact = viewer.contact
    return (
        Attendee.objects.filter(Q(contact=contact) | Q(checkout__buyer=contact))
        .filter(checkout__status__in=COMPLETED)
        .select_related("event", "ticket", "contact", "checkout")
        .order_by("event__starts_at", "pk")
    )


def owned_attendee(viewer: Viewer, attendee_id: str) -> Attendee:
    found = owned_attendees(viewer).filter(pk=attendee_id).first()
    if found is None:
        raise Http404("no such ticket")
    return found


@dataclass(frozen=True)
class Refund:
    """What cancelling a ticket gives back: its own lines on the invoice, credited whole,
    and for a points checkout the points they cost."""

    amount: int
    points: int


def refund_for(attendee: Attendee) -> Refund:
    checkout = attendee.checkout
    lines = InvoiceLine.objects.filter(invoice_id=checkout.invoice_id, attendee_id=attendee.pk)
    amount = sum(line.amount for line in lines)
    points = 0
    if checkout.payment == Checkout.Payment.WALLET and checkout.total > 0 and checkout.invoice:
        # The running-total rule of cancellation._points_back, read ahead of the refund.
        before = credited_amount(checkout.invoice)
        after = before + amount
        total, paid = checkout.total, checkout.points
        points = paid * after // total - paid * before // total
    return Refund(amount, points)


def can_cancel(viewer: Viewer, attendee: Attendee) -> bool:
    """The buyer cancels (the refund goes back to what paid), before the event starts."""
    return (
        attendee.status == Attendee.Status.REGISTERED
        and attendee.checkout.buyer_id == viewer.contact.pk
        and attendee.event.starts_at > timezone.now()
    )


def owned_invoices(viewer: Viewer) -> QuerySet[Invoice]:
    """Issued invoices billed to the viewer, and credit notes of those."""
    contact = viewer.contact
    return Invoice.objects.filter(
        Q(bill_to=contact) | Q(credits__bill_to=contact), status__in=ISSUED
    )


@member_page
@require_GET
def ticket_list(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    tickets = [
        {
            "attendee": a,
            "qr": ticket_qr(a.code) if a.status in VALID and a.code else "",
            "cancel": can_cancel(viewer, a),
        }
        for a in owned_attendees(viewer)
    ]
    notes = Invoice.objects.filter(status__in=ISSUED).order_by("issued_at", "pk")
    invoices = (
        owned_invoices(viewer)
        .filter(kind=Invoice.Kind.INVOICE)
        .prefetch_related(Prefetch("credit_notes", queryset=notes))
        .order_by("-issued_at", "-pk")
    )
    context = {"tickets": tickets, "invoices": invoices}
    return page(request, viewer, "portal/tickets/list.html", context, section="tickets")


@member_page
@require_GET
def ticket_page(request: HttpRequest, viewer: Viewer, attendee_id: str) -> HttpResponse:
    attendee = owned_attendee(viewer, attendee_id)
    valid = attendee.status in VALID and bool(attendee.code)
    context = {
        "attendee": attendee,
        "event": attendee.event,
        "qr": ticket_qr(attendee.code) if valid else "",
        "cancel": can_cancel(viewer, attendee),
    }
    return page(request, viewer, "portal/tickets/detail.html", context, section="tickets")


@member_page
@require_http_methods(["GET", "POST"])
def cancel_ticket(request: HttpRequest, viewer: Viewer, attendee_id: str) -> HttpResponse:
    """GET: what cancelling gives back, and the button; POST: cancel, once per form."""
    attendee = owned_attendee(viewer, attendee_id)
    form = CancelForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        # Claimed before anything is checked: a second click finds the first one's result
        # (the ticket it cancelled), not a ticket that "can no longer be cancelled".
        claimed = claim(request.user, form.cleaned_data["form_key"], "ticket_cancel")
        if not isinstance(claimed, Claimed):
            return claimed
        return _cancel(request, viewer, attendee, claimed, form.cleaned_data["form_key"])
    if not can_cancel(viewer, attendee):
        messages.error(request, _("This ticket can no longer be cancelled here."))
        return HttpResponseRedirect(f"/tickets/{attendee.pk}")
    context = {
        "attendee": attendee,
        "event": attendee.event,
        "refund": refund_for(attendee),
        "form": form,
    }
    return page(request, viewer, "portal/tickets/cancel.html", context, section="tickets")


def _cancel(
    request: HttpRequest, viewer: Viewer, attendee: Attendee, claimed: Claimed, key: str
) -> HttpResponse:
    if not can_cancel(viewer, attendee):
        claimed.release()
        messages.error(request, _("This ticket can no longer be cancelled here."))
        return HttpResponseRedirect(f"/tickets/{attendee.pk}")
    rkey = service_key(request.user, "ticket_cancel", key)
    result = attempt(
        lambda: cancel_attendee(attendee.pk, refund=True, request_key=rkey), atomic=False
    )
    if result.error is None:
        messages.success(request, _cancelled_text(attendee, result.value))
        return claimed.done("/tickets")
    claimed.release()
    messages.error(request, result.error.detail)
    return HttpResponseRedirect("/tickets")


def _cancelled_text(attendee: Attendee, value: object) -> str:
    refunded = value[1] if isinstance(value, tuple) else None
    if refunded is None:
        return _("Your ticket for %(event)s is cancelled.") % {"event": attendee.event.name}
    if refunded.points:
        back = pts(refunded.points)
    else:
        back = money(-refunded.credit_note.total, refunded.credit_note.currency)
    return _("Your ticket for %(event)s is cancelled; %(back)s is on its way back.") % {
        "event": attendee.event.name,
        "back": back,
    }


@member_page
@require_GET
def invoice_pdf(request: HttpRequest, viewer: Viewer, invoice_id: str) -> HttpResponse:
    invoice = owned_invoices(viewer).filter(pk=invoice_id).first()
    if invoice is None:
        raise Http404("no such invoice")
    pdf = render_pdf(invoice)
    response = HttpResponse(pdf.content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{pdf.filename}"'
    return response
