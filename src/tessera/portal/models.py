"""What the portal keeps of its own: who signs in as which contact, the forms already
submitted (so a double click acts once), and the watching of activity videos."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class PortalAccount(models.Model):
    """A person's sign-in: one Django user per contact. Created the first time the person
    asks for a sign-in link; the contact stays the record of who they are."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="portal_account"
    )
    contact = models.OneToOneField(
        "crm.Contact", on_delete=models.PROTECT, related_name="portal_account"
    )
    locale = models.CharField(max_length=16, blank=True, help_text="Empty: the site's locale")
    email_low_balance = models.BooleanField(default=True)
    email_news = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"portal sign-in of {self.contact_id}"


class FormSubmission(models.Model):
    """One row per form a signed-in person submitted, keyed by the form's hidden key.

    The row commits before the work runs, so a second click of the same form finds it and
    waits for (or is sent to) the first one's result instead of ordering or paying again.
    """

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress"
        DONE = "done"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=64)
    action = models.CharField(max_length=40)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.IN_PROGRESS)
    result_url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="uniq_form_submission"),
        ]
        indexes = [models.Index(fields=["created_at"], name="form_submission_created_idx")]

    def __str__(self) -> str:
        return f"{self.action} {self.key} ({self.status})"


class VideoWatch(models.Model):
    """How much of an activity's video a member has watched, as the server counts it.

    The player reports its position every few seconds; the server credits at most the wall
    time that passed since the previous report, so no single number from the browser can
    earn the points."""

    member = models.ForeignKey("loyalty.Member", on_delete=models.CASCADE, related_name="+")
    activity = models.ForeignKey("loyalty.Activity", on_delete=models.CASCADE, related_name="+")
    position = models.FloatField(default=0)
    credited_seconds = models.FloatField(default=0)
    reports = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    last_report_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "activity"], name="uniq_video_watch"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} watched {self.credited_seconds:.0f}s of {self.activity_id}"
