"""Signing people in to the portal in tests, and reading what the portal emailed."""

from __future__ import annotations

import re

from django.core import mail
from django.test import Client

from tessera.crm.models import Contact
from tessera.notifications.models import OutboundEmail
from tessera.notifications.services import deliver_email
from tessera.portal.identity import user_for_contact


def signed_in(contact: Contact) -> Client:
    client = Client()
    client.force_login(
        user_for_contact(contact), backend="django.contrib.auth.backends.ModelBackend"
    )
    return client


# A sign-in link in an email's text, and its path on the site.
SIGNIN_LINK = re.compile(r"https?://[^/\s]+(/signin/link\?\S+)")


def signin_link(to: str) -> str:
    """The path of the newest sign-in link queued for ``to``, as its email arrives: the
    token is minted when the worker sends it, never stored in the outbox."""
    email = (
        OutboundEmail.objects.filter(template="signin_link", to=to).order_by("-created_at").first()
    )
    assert email is not None, f"no sign-in email to {to}"
    deliver_email(email.pk)
    sent = [m for m in mail.outbox if m.extra_headers.get("X-Tessera-Email-Id") == email.pk]
    assert sent, f"sign-in email {email.pk} was not sent"
    found = SIGNIN_LINK.search(str(sent[-1].body))
    assert found is not None, sent[-1].body
    return found.group(1)
