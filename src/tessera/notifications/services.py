"""Queueing email: render now, send after commit, retry with back-off."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from tessera.crm.models import Contact
from tessera.crm.services import record_timeline
from tessera.notifications.attachments import AttachmentEmail, build_attachments, parse_spec
from tessera.notifications.models import OutboundEmail

logger = logging.getLogger(__name__)


def queue_email(
    template: str,
    *,
    to: str,
    context: Mapping[str, Any],
    contact: Contact | None = None,
    attachments_from: str = "",
) -> OutboundEmail:
    """Render ``notifications/email/<template>.{subject.txt,txt,html}`` and queue it.

    Call it inside the transaction of the change that causes the email: the row and its
    job commit or roll back with that change (rule 6: nothing is sent for a rollback).

    ``attachments_from`` (``"<builder>:<argument>"``, see ``notifications.attachments``)
    names what the worker attaches when it sends. A malformed spec or an unregistered
    builder is refused here (ValueError, LookupError), in the caller's request, rather than
    discovered by the worker after the change committed.
    """
    from tessera.notifications.tasks import send_email  # tasks import this module

    if attachments_from:
        parse_spec(attachments_from)
    ctx = {"site_name": "Tessera", "site_url": site_url(), **context}
    base = f"notifications/email/{template}"
    subject = " ".join(render_to_string(f"{base}.subject.txt", ctx).split())
    email = OutboundEmail.objects.create(
        template=template,
        to=to,
        subject=subject[:255],
        text_body=render_to_string(f"{base}.txt", ctx),
        html_body=render_to_string(f"{base}.html", ctx),
        contact=contact,
        attachments_from=attachments_from,
    )
    send_email.enqueue(email.pk)
    return email


def site_url() -> str:
    """Where links in emails point: TESSERA_SITE_URL (set it in production), else the first
    host this site serves. The worker that renders some emails has no request to ask."""
    if settings.TESSERA_SITE_URL:
        return str(settings.TESSERA_SITE_URL)
    host = next((h for h in settings.ALLOWED_HOSTS if h not in ("*", "testserver")), "localhost")
    return f"http://{host.lstrip('.')}"


def retry_delay(attempt: int) -> timedelta:
    """Exponential back-off after the ``attempt``-th failure, capped."""
    seconds = settings.EMAIL_RETRY_BASE_SECONDS * (2 ** max(attempt - 1, 0))
    return timedelta(seconds=min(seconds, settings.EMAIL_RETRY_MAX_SECONDS))


def deliver_email(email_id: str) -> str:
    """Send one queued email. Returns its status afterwards.

    The row is locked while we decide, so two workers never both send it; building the
    attachments and the SMTP call run outside any transaction. Either failing is one failed
    attempt: recorded, and retried with back-off.
    """
    with transaction.atomic():
        email = OutboundEmail.objects.select_for_update().filter(pk=email_id).first()
        if email is None or email.status in (
            OutboundEmail.Status.SENT,
            OutboundEmail.Status.FAILED,
        ):
            return email.status if email else "missing"
        email.attempts += 1
        email.save(update_fields=["attempts"])

    try:
        message = _compose(email)
    except Exception as exc:  # a builder's bug or a missing record: keep the email, retry
        logger.warning(
            "email %s attempt %s: attachments %r failed",
            email.pk,
            email.attempts,
            email.attachments_from,
            exc_info=True,
        )
        return _record_failure(email, f"attachments {email.attachments_from}: ", exc)
    try:
        message.send(fail_silently=False)
    except Exception as exc:  # any transport failure: record it and retry later
        logger.warning("email %s attempt %s failed: %s", email.pk, email.attempts, exc)
        return _record_failure(email, "", exc)

    with transaction.atomic():
        email.status = OutboundEmail.Status.SENT
        email.sent_at = timezone.now()
        email.last_error = ""
        email.next_attempt_at = None
        email.save(update_fields=["status", "sent_at", "last_error", "next_attempt_at"])
        if email.contact_id and email.contact is not None:
            record_timeline(
                email.contact,
                kind="email_sent",
                obj=email,
                summary=f"Email sent: {email.subject}",
                data={"template": email.template, "to": email.to},
            )
    return email.status


def _compose(email: OutboundEmail) -> AttachmentEmail:
    """The message to send, with its attachments built now (by the worker, per attempt)."""
    message = AttachmentEmail(
        subject=email.subject,
        body=email.text_body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.to],
        headers={"X-Tessera-Email-Id": email.pk},
    )
    if email.html_body:
        message.attach_alternative(email.html_body, "text/html")
    if email.attachments_from:
        for attachment in build_attachments(email.attachments_from):
            message.add(attachment)
    return message


def _record_failure(email: OutboundEmail, context: str, exc: Exception) -> str:
    """Note a failed attempt; schedule the next one, or give up after the last allowed."""
    from tessera.notifications.tasks import send_email

    with transaction.atomic():
        email.last_error = f"{context}{type(exc).__name__}: {exc}"[:2000]
        if email.attempts >= settings.EMAIL_MAX_ATTEMPTS:
            email.status = OutboundEmail.Status.FAILED
            email.next_attempt_at = None
        else:
            email.status = OutboundEmail.Status.RETRYING
            email.next_attempt_at = timezone.now() + retry_delay(email.attempts)
            send_email.using(run_after=email.next_attempt_at).enqueue(email.pk)
        email.save(update_fields=["status", "last_error", "next_attempt_at"])
    return email.status


def retry_now(email: OutboundEmail) -> None:
    """Admin action: give a failed email a fresh set of attempts."""
    from tessera.notifications.tasks import send_email

    with transaction.atomic():
        OutboundEmail.objects.filter(pk=email.pk).exclude(status=OutboundEmail.Status.SENT).update(
            status=OutboundEmail.Status.QUEUED, attempts=0, next_attempt_at=None
        )
        send_email.enqueue(email.pk)
