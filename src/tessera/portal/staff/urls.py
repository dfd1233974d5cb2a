"""Staff pages, under /staff/."""

from __future__ import annotations

from django.urls import URLPattern, path

from tessera.portal.staff import attendees, checkin, dashboard

urlpatterns: list[URLPattern] = [
    path("", dashboard.dashboard, name="staff_dashboard"),
    path("charts/<slug:name>.svg", dashboard.chart, name="staff_chart"),
    path("check-in", checkin.check_in_page, name="staff_checkin"),
    path("events", dashboard.events, name="staff_events"),
    path("events/<str:event_id>/attendees", attendees.attendees, name="staff_attendees"),
    path(
        "events/<str:event_id>/attendees.csv",
        attendees.attendees_export,
        name="staff_attendees_csv",
    ),
    path(
        "events/<str:event_id>/attendees/<str:attendee_id>/check-in",
        attendees.attendee_check_in,
        name="staff_attendee_checkin",
    ),
    path(
        "events/<str:event_id>/attendees/<str:attendee_id>/cancel",
        attendees.attendee_cancel,
        name="staff_attendee_cancel",
    ),
]
