"""Queueing email: render now, send after commit, retry with back-off."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from tessera.crm.models import Contact
from tessera.crm.services import record_timeline
from tessera.notifications.attachments import AttachmentEmail, build_attachments, parse_spec
from tessera.notifications.models import OutboundEmail
from tessera.notifications.secrets import fill_secrets

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
        if _being_sent(email):  # another job holds the lease: never two sends at once
            return email.status
        email.attempts += 1
        email.sending_since = timezone.now()
        email.save(update_fields=["attempts", "sending_since"])

    try:
        message = _compose(email)
    except Exception as exc:  # a builder's bug or a missing record: keep the email, retry
        logger.warning(
            "email %s attempt %s: secrets or attachments %r failed",
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
        email.sending_since = None
        email.save(
            update_fields=["status", "sent_at", "last_error", "next_attempt_at", "sending_since"]
        )
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
    """The message to send, with its secrets filled and its attachments built now (by the
    worker, per attempt)."""
    text_body, html_body = fill_secrets(email)
    message = AttachmentEmail(
        subject=email.subject,
        body=text_body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.to],
        headers={"X-Tessera-Email-Id": email.pk},
    )
    if html_body:
        message.attach_alternative(html_body, "text/html")
    if email.attachments_from:
        for attachment in build_attachments(email.attachments_from):
            message.add(attachment)
    return message


def _record_failure(email: OutboundEmail, context: str, exc: Exception) -> str:
    """Note a failed attempt; schedule the next one, or give up after the last allowed."""
    from tessera.notifications.tasks import send_email

    with transaction.atomic():
        email.last_error = f"{context}{type(exc).__name__}: {exc}"[:2000]
        email.sending_since = None
        if email.attempts >= settings.EMAIL_MAX_ATTEMPTS:
            email.status = OutboundEmail.Status.FAILED
            email.next_attempt_at = None
        else:
            email.status = OutboundEmail.Status.RETRYING
            email.next_attempt_at = timezone.now() + retry_delay(email.attempts)
            send_email.using(run_after=email.next_attempt_at).enqueue(email.pk)
        email.save(update_fields=["status", "last_error", "next_attempt_at", "sending_since"])
    return email.status


def _being_sent(email: OutboundEmail) -> bool:
    """Whether another job's send of ``email`` may still be running (its lease is fresh)."""
    if email.sending_since is None:
        return False
    age = (timezone.now() - email.sending_since).total_seconds()
    return age < settings.EMAIL_STALLED_SECONDS


def requeue_stalled(now: datetime | None = None) -> int:
    """Enqueue again the emails whose send job was lost; returns how many.

    A worker killed mid-send leaves its email unsent with a stale lease (``sending_since``)
    and its job claimed for ever: the soak found one after a SIGKILL of the worker. A job can
    also be lost before it starts (a retry's, or, with a backend that is not an outbox, one
    lost between commit and push). An email with no progress for ``EMAIL_STALLED_SECONDS``
    gets a new job. A duplicate job is harmless: ``deliver_email`` skips a sent email, and a
    fresh lease keeps two jobs from sending at once. What no sweep can tell apart is a worker
    killed after the mail server accepted the message and before the row said so: that
    email goes out twice, which is the price of never losing one."""
    from tessera.notifications.tasks import send_email

    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.EMAIL_STALLED_SECONDS)
    waiting = Q(sending_since__isnull=True) & (
        Q(next_attempt_at__isnull=True, created_at__lt=cutoff) | Q(next_attempt_at__lt=cutoff)
    )
    stalled = OutboundEmail.objects.filter(
        waiting | Q(sending_since__lt=cutoff),
        status__in=(OutboundEmail.Status.QUEUED, OutboundEmail.Status.RETRYING),
    )
    count = 0
    for email_id in stalled.values_list("pk", flat=True)[:500]:
        with transaction.atomic():
            moved = OutboundEmail.objects.filter(pk=email_id, **_unchanged(email_id)).update(
                status=OutboundEmail.Status.RETRYING, next_attempt_at=now, sending_since=None
            )
            if moved:
                send_email.enqueue(email_id)
                count += moved
    if count:
        logger.warning("requeued %s stalled email(s)", count)
    return count


def _unchanged(email_id: str) -> dict[str, Any]:
    """The email's status and next attempt as read: a send that moved on meanwhile wins."""
    row = (
        OutboundEmail.objects.filter(pk=email_id)
        .values("status", "next_attempt_at", "sending_since")
        .first()
    )
    return dict(row) if row else {"status": "gone"}  # deleted meanwhile: matches nothing


def retry_now(email: OutboundEmail) -> None:
    """Admin action: give a failed email a fresh set of attempts."""
    from tessera.notifications.tasks import send_email

    with transaction.atomic():
        OutboundEmail.objects.filter(pk=email.pk).exclude(status=OutboundEmail.Status.SENT).update(
            status=OutboundEmail.Status.QUEUED, attempts=0, next_attempt_at=None, sending_since=None
        )
        send_email.enqueue(email.pk)
