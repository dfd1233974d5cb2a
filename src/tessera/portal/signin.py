"""Signing in by emailed link: ask for a link, follow it, and nothing said about who exists."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from sesame.utils import get_token

from tessera.notifications.models import OutboundEmail
from tessera.notifications.services import queue_email
from tessera.portal.identity import contact_for_email, user_for_contact

# Stands for the link's token in the queued email; the worker mints the token as it sends
# (tessera.notifications.secrets), so no usable link is ever stored or logged. Letters and
# hyphens only, so urlencode leaves it as it is.
TOKEN_SLOT = "tessera-signin-token-slot"  # noqa: S105 - a placeholder, not a secret


@dataclass(frozen=True)
class LinkRequest:
    email: str
    next_url: str  # a path on this site, already checked
    site_url: str  # where the link points: TESSERA_SITE_URL, or the asking request's host


def send_signin_link(req: LinkRequest) -> bool:
    """Email a single-use sign-in link to the contact with this address, if there is one.
    Returns whether a link was sent; the page says the same thing either way."""
    contact = contact_for_email(req.email)
    if contact is None:
        return False
    with transaction.atomic():
        user_for_contact(contact)  # made now, so the worker only reads it
        query = urlencode({settings.SESAME_TOKEN_NAME: TOKEN_SLOT, "next": req.next_url})
        queue_email(
            "signin_link",
            to=contact.email,
            contact=contact,
            context={
                "first_name": contact.first_name,
                "link": f"{req.site_url}/signin/link?{query}",
                "minutes": settings.SESAME_MAX_AGE // 60,
            },
        )
    return True


def fill_signin_token(email: OutboundEmail) -> dict[str, str]:
    """A fresh single-use token for the link, minted when the worker sends the email: its
    lifetime starts then, and a retried send carries a new one."""
    if email.contact is None:
        raise LookupError(f"sign-in email {email.pk} has no contact")
    return {TOKEN_SLOT: get_token(user_for_contact(email.contact))}
