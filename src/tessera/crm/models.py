from __future__ import annotations

from django.db import models
from django.db.models.functions import Lower

from tessera.core.ids import PublicIdField

# Derived from ``phone`` and ``country`` on every save through the CRM services (the API,
# the admin and the CSV import all save through them; the phone itself is kept as typed).
# Matching reads phones from ``phone`` and ``country`` and looks them up through match
# keys, so this is for display and exports: not indexed, and a save that bypasses the
# services leaves it as it was.
E164_HELP = "The phone in E.164, read in the record's country, else TESSERA_DEFAULT_REGION"


class AddressMixin(models.Model):
    street = models.CharField(max_length=255, blank=True)
    city = models.CharField(max_length=120, blank=True)
    postal_code = models.CharField(max_length=32, blank=True)
    country = models.CharField(max_length=80, blank=True)

    class Meta:
        abstract = True


class Account(AddressMixin):
    """An organisation (Salesforce's Account)."""

    id = PublicIdField(prefix="acc")
    name = models.CharField(max_length=255)
    website = models.CharField(max_length=255, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    phone_e164 = models.CharField(max_length=20, blank=True, editable=False, help_text=E164_HELP)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(Lower("name"), name="account_name_lower_idx")]

    def __str__(self) -> str:
        return self.name


class PersonMixin(AddressMixin):
    first_name = models.CharField(max_length=120, blank=True)
    last_name = models.CharField(max_length=120)
    email = models.EmailField(max_length=254, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    phone_e164 = models.CharField(max_length=20, blank=True, editable=False, help_text=E164_HELP)
    company = models.CharField(max_length=255, blank=True)
    title = models.CharField(max_length=128, blank=True)
    birthdate = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # "Most recently active" breaks ties between equally good duplicate matches.
    last_activity_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.full_name or self.email or str(self.pk)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Contact(PersonMixin):
    id = PublicIdField(prefix="con")
    # Salesforce's "Email Opt Out": no reminders (low balance). Receipts, tickets and
    # sign-in links are what the person asked for and are always sent.
    email_opt_out = models.BooleanField(default=False)
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts"
    )

    class Meta:
        indexes = [models.Index(Lower("email"), name="contact_email_lower_idx")]


class Lead(PersonMixin):
    id = PublicIdField(prefix="lea")
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="leads"
    )
    converted_contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="from_leads"
    )
    converted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(Lower("email"), name="lead_email_lower_idx")]


class TimelineEntry(models.Model):
    """One line on a contact's timeline: a record that touched the contact.

    Written by the service that made the change, in the same transaction, so the timeline
    never shows something that rolled back and never misses something that committed.
    """

    id = PublicIdField(prefix="tle")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="timeline")
    kind = models.CharField(max_length=40, help_text="e.g. contact_created, invoice, email_sent")
    object_type = models.CharField(max_length=40)
    object_id = models.CharField(max_length=64)
    summary = models.CharField(max_length=255)
    data = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "timeline entries"
        indexes = [models.Index(fields=["contact", "-id"], name="timeline_contact_idx")]

    def __str__(self) -> str:
        return self.summary


# Matching models live in their own module; imported here so Django registers them.
from tessera.crm.matching.models import (  # noqa: E402
    MatchingCriterion,
    MatchingRule,
    MatchKey,
    NameVariant,
)

__all__ = [
    "Account",
    "Contact",
    "Lead",
    "MatchKey",
    "MatchingCriterion",
    "MatchingRule",
    "NameVariant",
    "TimelineEntry",
]
