"""Events, what they sell, who comes, and the checkouts that register them.

Capacity is a counter per item and per event (``sold``: places registered, held by a
checkout in progress or held for a waitlist offer) and, per item, ``waiting``: waitlist
entries not yet offered, which count against what a new buyer can take. Counters move
only through ``events.capacity`` by conditional updates, and the database refuses a
counter past its capacity (check constraints), so no code path can oversell even by
mistake. A whole-row ``save()`` (the admin's, say) never writes a counter back: it would
write the value read when the form was opened over every place taken since.

An event's catalogue (its items and questions) is read by every checkout and changes
rarely, so checkouts cache it per process under ``catalogue_version``, which every save or
delete of an item or a question moves on (``events.catalogue``).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from tessera.core.ids import PublicIdField


class KeepsCounters(models.Model):
    """A model whose counters move only by conditional updates: a save of a row that
    exists writes every field but those."""

    counters: tuple[str, ...] = ()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                f.name
                for f in self._meta.concrete_fields
                if not f.primary_key and f.name not in self.counters
            ]
        super().save(*args, **kwargs)


def check_capacity(capacity: int | None, taken: int) -> None:
    """A form's check: a capacity below the places taken would break the counter's rule."""
    if capacity is not None and capacity < taken:
        raise ValidationError({"capacity": f"{taken} places are taken or owed to the waitlist"})


def touch_catalogue(event_id: str) -> None:
    """Tell every process's checkout cache that the event's items or questions changed."""
    Event.objects.filter(pk=event_id).update(catalogue_version=F("catalogue_version") + 1)


class ChangesCatalogue(models.Model):
    """An item or a question: saving or deleting one moves the event's catalogue on."""

    event_id: str

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        touch_catalogue(self.event_id)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        event_id = self.event_id
        deleted = super().delete(*args, **kwargs)
        touch_catalogue(event_id)
        return deleted


class Event(KeepsCounters):
    counters = ("sold", "catalogue_version")

    class Status(models.TextChoices):
        DRAFT = "draft"
        LIVE = "live"
        CLOSED = "closed"
        CANCELLED = "cancelled"

    id = PublicIdField(prefix="evt")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    timezone = models.CharField(max_length=64, help_text="IANA time zone, e.g. Europe/Berlin")
    venue = models.CharField(max_length=255, blank=True)
    currency = models.CharField(max_length=3)
    capacity = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: no limit")
    sold = models.PositiveIntegerField(default=0, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    program = models.ForeignKey(
        "loyalty.Program", null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    attendance_points = models.PositiveIntegerField(default=0)
    waitlist_offer_hours = models.PositiveIntegerField(default=48)
    catalogue_version = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["status", "starts_at"], name="event_status_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(capacity__isnull=True) | Q(sold__lte=F("capacity")),
                name="event_sold_within_capacity",
            ),
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="event_ends"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        check_capacity(self.capacity, self.sold)


class EventItem(ChangesCatalogue, KeepsCounters):
    counters = ("sold", "waiting")

    class Kind(models.TextChoices):
        TICKET = "ticket"
        ADDON = "addon"
        DONATION = "donation"
        PRODUCT = "product"

    id = PublicIdField(prefix="itm")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="items")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.TICKET)
    price = models.PositiveBigIntegerField(help_text="Minor units; a donation's minimum")
    tax_rate_bp = models.PositiveIntegerField(default=0, help_text="Basis points: 1900 = 19%")
    tax_inclusive = models.BooleanField(default=True, help_text="Prices include the tax")
    capacity = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: no limit")
    sold = models.PositiveIntegerField(default=0, editable=False)
    waiting = models.PositiveIntegerField(default=0, editable=False)
    sales_start = models.DateTimeField(null=True, blank=True)
    sales_end = models.DateTimeField(null=True, blank=True)
    max_per_order = models.PositiveIntegerField(null=True, blank=True)
    active = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(capacity__isnull=True) | Q(sold__lte=F("capacity")),
                name="item_sold_within_capacity",
            ),
            models.CheckConstraint(condition=Q(tax_rate_bp__lte=10000), name="item_tax_rate"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        check_capacity(self.capacity, self.sold + self.waiting)

    @property
    def takes_a_place(self) -> bool:
        """Tickets are places at the event; add-ons, donations and products are not."""
        return self.kind == self.Kind.TICKET


class Question(ChangesCatalogue):
    class Type(models.TextChoices):
        TEXT = "text"
        NUMBER = "number"
        SELECT = "select"
        MULTISELECT = "multiselect"
        CHECKBOX = "checkbox"
        DATE = "date"
        EMAIL = "email"
        PHONE = "phone"

    id = PublicIdField(prefix="qst")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="questions")
    label = models.CharField(max_length=500)
    type = models.CharField(max_length=12, choices=Type.choices)
    required = models.BooleanField(default=False)
    options = models.JSONField(default=list, blank=True)
    items = models.ManyToManyField(EventItem, blank=True, related_name="questions")
    per_attendee = models.BooleanField(default=True, help_text="Off: asked once per order")
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.label


class PromoCode(KeepsCounters):
    counters = ("used",)

    id = PublicIdField(prefix="prm")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="promo_codes")
    code = models.CharField(max_length=64, help_text="Stored upper case; matched in any case")
    percent_off = models.PositiveSmallIntegerField(null=True, blank=True)
    amount_off = models.PositiveBigIntegerField(null=True, blank=True)
    max_uses = models.PositiveIntegerField(null=True, blank=True)
    used = models.PositiveIntegerField(default=0, editable=False)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    items = models.ManyToManyField(EventItem, blank=True, related_name="promo_codes")
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "code"], name="uniq_promo_code"),
            models.CheckConstraint(
                condition=Q(max_uses__isnull=True) | Q(used__lte=F("max_uses")),
                name="promo_used_within_max",
            ),
            models.CheckConstraint(
                condition=(Q(percent_off__isnull=True) ^ Q(amount_off__isnull=True)),
                name="promo_one_kind_of_discount",
            ),
        ]

    def __str__(self) -> str:
        return self.code


class WaitlistEntry(models.Model):
    class Status(models.TextChoices):
        WAITING = "waiting"
        OFFERED = "offered"
        REDEEMED = "redeemed"
        EXPIRED = "expired"
        CANCELLED = "cancelled"

    id = PublicIdField(prefix="wle")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="waitlist")
    item = models.ForeignKey(EventItem, on_delete=models.CASCADE, related_name="waitlist")
    contact = models.ForeignKey("crm.Contact", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.WAITING)
    # Only a digest of the offer's token is kept: the token itself is in the email.
    token_digest = models.CharField(max_length=64, null=True, blank=True, unique=True)
    offered_at = models.DateTimeField(null=True, blank=True)
    offer_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "waitlist entries"
        indexes = [models.Index(fields=["item", "status", "id"], name="waitlist_queue_idx")]

    def __str__(self) -> str:
        return f"{self.contact_id} waiting for {self.item_id} ({self.status})"


class Checkout(models.Model):
    """One registration attempt: what the buyer asked for, what it holds, how it ends."""

    class Status(models.TextChoices):
        PENDING = "pending"
        REQUIRES_ACTION = "requires_action"
        PAID = "paid"
        FREE = "free"
        FAILED = "failed"
        EXPIRED = "expired"

    class Payment(models.TextChoices):
        CARD = "card"
        WALLET = "wallet"
        NONE = "none"

    id = PublicIdField(prefix="chk")
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="checkouts")
    buyer = models.ForeignKey("crm.Contact", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    payment = models.CharField(max_length=6, choices=Payment.choices)
    member = models.ForeignKey(
        "loyalty.Member", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    invoice = models.OneToOneField(
        "billing.Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    transaction = models.OneToOneField(
        "billing.Transaction", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    wallet_transaction = models.OneToOneField(
        "loyalty.WalletTransaction",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    promo_code = models.ForeignKey(
        PromoCode, null=True, blank=True, on_delete=models.PROTECT, related_name="checkouts"
    )
    waitlist_entry = models.ForeignKey(
        WaitlistEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="checkouts"
    )
    # What the checkout holds, so that a failure gives back exactly that: item id ->
    # quantity, and the event's places.
    held_items = models.JSONField(default=dict)
    held_places = models.PositiveIntegerField(default=0)
    released = models.BooleanField(default=False)
    total = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    points = models.BigIntegerField(default=0, help_text="Wallet payments: the points taken")
    # The Stripe PaymentMethod id a card checkout pays with, so a retry can resume it.
    stripe_payment_method = models.CharField(max_length=255, blank=True)
    hold_expires_at = models.DateTimeField(null=True, blank=True)
    request_key = models.CharField(max_length=64, null=True, blank=True, unique=True)
    failure_code = models.CharField(max_length=100, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "hold_expires_at"], name="checkout_hold_idx")]

    def __str__(self) -> str:
        return f"{self.pk} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in {
            self.Status.PAID,
            self.Status.FREE,
            self.Status.FAILED,
            self.Status.EXPIRED,
        }


class Attendee(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        REGISTERED = "registered"
        WAITLISTED = "waitlisted"
        CANCELLED = "cancelled"
        CHECKED_IN = "checked_in"

    id = PublicIdField(prefix="att")
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="attendees")
    checkout = models.ForeignKey(Checkout, on_delete=models.PROTECT, related_name="attendees")
    contact = models.ForeignKey("crm.Contact", on_delete=models.PROTECT, related_name="+")
    # The Lead the person was matched to, when it was one: linked, never duplicated.
    lead = models.ForeignKey(
        "crm.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ticket = models.ForeignKey(EventItem, on_delete=models.PROTECT, related_name="attendees")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    code = models.CharField(max_length=200, blank=True, help_text="The signed ticket code")
    registered_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    checked_in_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["event", "status"], name="attendee_event_idx")]

    def __str__(self) -> str:
        return f"{self.contact_id} at {self.event_id} ({self.status})"


class Answer(models.Model):
    """An answer to a question: an attendee's, or the order's (``attendee`` empty)."""

    checkout = models.ForeignKey(Checkout, on_delete=models.CASCADE, related_name="answers")
    attendee = models.ForeignKey(
        Attendee, null=True, blank=True, on_delete=models.CASCADE, related_name="answers"
    )
    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="answers")
    value = models.JSONField()

    def __str__(self) -> str:
        return f"{self.question_id}: {self.value!r}"
