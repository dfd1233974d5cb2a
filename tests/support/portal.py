"""Signing people in to the portal in tests, and reading what the portal emailed."""

from __future__ import annotations

import re

from django.test import Client

from tessera.crm.models import Contact
from tessera.notifications.models import OutboundEmail
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
    """The path of the newest sign-in link queued for ``to``."""
    email = (
        OutboundEmail.objects.filter(template="signin_link", to=to).order_by("-created_at").first()
    )
    assert email is not None, f"no sign-in email to {to}"
    found = SIGNIN_LINK.search(email.text_body)
    assert found is not None, email.text_body
    return found.group(1)
