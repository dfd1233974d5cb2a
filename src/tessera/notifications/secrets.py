"""Secrets an email carries that the outbox never stores: filled in by the worker as it sends.

A sign-in link's token signs a person in. Rendered when the email is queued, it would sit in
``OutboundEmail``'s body (readable in the admin, in backups, and in the SQL log when queries
are logged) for as long as the row lives. Instead the queued body holds a slot, a fixed word
the owning app chose, and the app registers a filler for its template that returns the value
of each slot for one email; the worker calls it per attempt, just before sending, so the
secret exists only in the message on its way to the mail server.

Owning apps register their fillers at start-up, in ``AppConfig.ready()``::

    register_secret_filler("signin_link", fill_signin_token)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tessera.notifications.models import OutboundEmail

Filler = Callable[[OutboundEmail], Mapping[str, str]]
_fillers: dict[str, Filler] = {}


def register_secret_filler(template: str, filler: Filler) -> None:
    """Fill the slots of every ``template`` email with ``filler(email)`` when it is sent.

    Registering the same filler again is harmless (``ready()`` may run twice in tests); a
    different filler for a taken template is a mistake and refused."""
    existing = _fillers.get(template)
    if existing is not None and existing is not filler:
        raise ValueError(f"a secret filler for {template!r} is already registered")
    _fillers[template] = filler


def fill_secrets(email: OutboundEmail) -> tuple[str, str]:
    """The email's text and HTML bodies with its slots filled (unchanged without a filler)."""
    filler = _fillers.get(email.template)
    if filler is None:
        return email.text_body, email.html_body
    text, html = email.text_body, email.html_body
    for slot, value in filler(email).items():
        if slot not in text:
            # A queued body without its slot would go out without the secret it exists for.
            raise LookupError(f"email {email.pk} has no {slot!r} to fill")
        text, html = text.replace(slot, value), html.replace(slot, value)
    return text, html
