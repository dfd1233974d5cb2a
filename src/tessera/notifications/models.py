from __future__ import annotations

from django.db import models

from tessera.core.ids import PublicIdField


class OutboundEmail(models.Model):
    """An email we have decided to send: rendered when queued, sent later by the worker.

    The row and its send task are written in the caller's transaction, so an email exists
    only if the change that caused it committed. Status, attempts and the last error make
    failed sends visible (and retryable) in the admin.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RETRYING = "retrying"
        SENT = "sent"
        FAILED = "failed"

    id = PublicIdField(prefix="eml")
    template = models.CharField(max_length=100)
    to = models.EmailField(max_length=254)
    subject = models.CharField(max_length=255)
    text_body = models.TextField()
    html_body = models.TextField(blank=True)
    # "<builder>:<argument>" (tessera.notifications.attachments): the worker builds the
    # attachments when it sends, so no file is ever stored here.
    attachments_from = models.CharField(max_length=120, blank=True)
    contact = models.ForeignKey(
        "crm.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="emails"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Set while a worker sends (a lease): a second job for the same email finds it and leaves
    # the send to the first, so duplicate jobs never mean duplicate emails. A lease older than
    # EMAIL_STALLED_SECONDS is a worker that died mid-send, and the sweep sends again.
    sending_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"], name="email_status_idx")]

    def __str__(self) -> str:
        return f"{self.subject} -> {self.to} ({self.status})"
