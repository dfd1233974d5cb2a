"""Confirmation emails of a completed checkout, made by the worker.

The buyer gets the invoice summary with the invoice PDF, the event's calendar file and
each attendee's ticket (its QR code inline); an attendee with an address of their own gets
their ticket too. The attachments are built when each email is sent (``build_attachments``,
registered with notifications), so nothing heavy is made in the request and no file is
stored in the database.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings

from tessera.billing.invoices import render_invoice_pdf
from tessera.billing.models import Invoice
from tessera.core.money import Money
from tessera.events.documents import CalendarEvent, event_ics, qr_png
from tessera.events.models import Attendee, Checkout
from tessera.notifications.attachments import Attachment
from tessera.notifications.services import queue_email

ATTACHMENTS = "checkout"


def _money(amount: int, currency: str) -> str:
    return Money(amount, currency).format(settings.TESSERA_LOCALE)


def _context(checkout: Checkout, attendees: list[Attendee]) -> dict[str, Any]:
    event = checkout.event
    local = ZoneInfo(event.timezone)
    invoice = checkout.invoice
    lines = list(invoice.lines.order_by("position")) if invoice else []
    return {
        "first_name": checkout.buyer.first_name,
        "event": event.name,
        "venue": event.venue,
        "starts": event.starts_at.astimezone(local).strftime("%A %d %B %Y, %H:%M"),
        "time_zone": event.timezone,
        "invoice_number": invoice.number if invoice else "",
        "total": _money(checkout.total, checkout.currency),
        "paid_with": {"card": "card", "wallet": "points", "none": "nothing (free)"}[
            checkout.payment
        ],
        "points": checkout.points,
        "lines": [
            {
                "description": line.description,
                "quantity": line.quantity,
                "amount": _money(line.amount, checkout.currency),
            }
            for line in lines
        ],
        "attendees": [
            {"id": a.pk, "name": a.contact.full_name, "ticket": a.ticket.name, "code": a.code}
            for a in attendees
        ],
    }


def queue_confirmations(checkout_id: str) -> int:
    """Queue the buyer's confirmation and each attendee's ticket; how many emails."""
    checkout = Checkout.objects.select_related("event", "buyer", "invoice").get(pk=checkout_id)
    attendees = list(
        checkout.attendees.filter(status=Attendee.Status.REGISTERED).select_related(
            "contact", "ticket"
        )
    )
    sent = 0
    context = _context(checkout, attendees)
    if checkout.buyer.email:
        queue_email(
            "checkout_confirmation",
            to=checkout.buyer.email,
            context=context,
            contact=checkout.buyer,
            attachments_from=f"{ATTACHMENTS}:{checkout.pk}",
        )
        sent += 1
    buyer_email = checkout.buyer.email.lower()
    for attendee in attendees:
        email = attendee.contact.email
        if not email or email.lower() == buyer_email:
            continue
        own = {
            **context,
            "first_name": attendee.contact.first_name,
            "attendees": [a for a in context["attendees"] if a["id"] == attendee.pk],
        }
        queue_email(
            "attendee_ticket",
            to=email,
            context=own,
            contact=attendee.contact,
            attachments_from=f"{ATTACHMENTS}:{checkout.pk}/{attendee.pk}",
        )
        sent += 1
    return sent


def build_attachments(argument: str) -> list[Attachment]:
    """``chk_…`` for the buyer (invoice, calendar, every ticket) or ``chk_…/att_…`` for one
    attendee (calendar and their ticket)."""
    checkout_id, _, attendee_id = argument.partition("/")
    checkout = Checkout.objects.select_related("event", "invoice").get(pk=checkout_id)
    attendees = checkout.attendees.filter(status=Attendee.Status.REGISTERED)
    if attendee_id:
        attendees = attendees.filter(pk=attendee_id)
    event = checkout.event
    out: list[Attachment] = []
    if checkout.invoice_id and not attendee_id:
        invoice = Invoice.objects.get(pk=checkout.invoice_id)
        out.append(
            Attachment(
                f"{invoice.number or invoice.pk}.pdf",
                render_invoice_pdf(invoice),
                "application/pdf",
            )
        )
    for attendee in attendees:
        out.append(
            Attachment(
                f"ticket-{attendee.pk}.png",
                qr_png(attendee.code),
                "image/png",
                content_id=f"qr-{attendee.pk}",
            )
        )
    first = attendees.first()
    calendar = CalendarEvent.of(event, first.pk if first else checkout.pk)
    out.append(Attachment("event.ics", event_ics(calendar), "text/calendar"))
    return out
