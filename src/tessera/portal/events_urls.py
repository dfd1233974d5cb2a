"""Event pages for members and attendees: /events, /events/<id>, /tickets.

Emails link to these addresses (``/events/<id>?waitlist_token=…``): keep them stable. The
``.ics`` route comes before ``events/<id>``, which would otherwise take ``evt_….ics``.
"""

from __future__ import annotations

from django.urls import URLPattern, path

from tessera.portal.views import checkouts, events, tickets

urlpatterns: list[URLPattern] = [
    path("events", events.event_list, name="events"),
    path("events/checkouts/<str:checkout_id>", checkouts.checkout_page, name="event_checkout"),
    path(
        "events/checkouts/<str:checkout_id>/confirm",
        checkouts.confirm_checkout,
        name="event_checkout_confirm",
    ),
    path("events/<str:event_id>.ics", checkouts.event_calendar, name="event_calendar"),
    path("events/<str:event_id>", events.event_page, name="event"),
    path("events/<str:event_id>/waitlist", checkouts.join_waitlist, name="event_waitlist"),
    path("tickets", tickets.ticket_list, name="tickets"),
    path("tickets/<str:attendee_id>", tickets.ticket_page, name="ticket"),
    path("tickets/<str:attendee_id>/cancel", tickets.cancel_ticket, name="ticket_cancel"),
    path("invoices/<str:invoice_id>.pdf", tickets.invoice_pdf, name="invoice_pdf"),
]
