"""Signing in by emailed link: ask for a link, follow it, and nothing said about who exists."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from sesame.utils import get_token

from tessera.notifications.services import queue_email
from tessera.portal.identity import contact_for_email, user_for_contact


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
        user = user_for_contact(contact)
        query = urlencode({settings.SESAME_TOKEN_NAME: get_token(user), "next": req.next_url})
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
