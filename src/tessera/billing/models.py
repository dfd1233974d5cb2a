"""Card payments. Card numbers and CVCs never reach us: only Stripe ids, brand, last four
digits and expiry (rule 7)."""

from __future__ import annotations

from django.db import models

from tessera.core.ids import PublicIdField


class StripeCustomer(models.Model):
    contact = models.OneToOneField(
        "crm.Contact", on_delete=models.PROTECT, related_name="stripe_customer"
    )
    stripe_id = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.stripe_id


class PaymentMethod(models.Model):
    id = PublicIdField(prefix="pmt")
    contact = models.ForeignKey(
        "crm.Contact", on_delete=models.PROTECT, related_name="payment_methods"
    )
    stripe_id = models.CharField(max_length=255, unique=True)
    brand = models.CharField(max_length=30, blank=True)
    last4 = models.CharField(max_length=4, blank=True)
    exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    holder_name = models.CharField(max_length=200, blank=True)
    billing_line1 = models.CharField(max_length=255, blank=True)
    billing_city = models.CharField(max_length=120, blank=True)
    billing_postal_code = models.CharField(max_length=32, blank=True)
    billing_country = models.CharField(max_length=2, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.brand} •••• {self.last4}"


class Transaction(models.Model):
    """One attempt to take money. Written and committed *before* Stripe is called, so a
    crash mid-call leaves a pending row that ``tessera reconcile`` settles."""

    class Status(models.TextChoices):
        PENDING = "pending"
        AUTHORIZED = "authorized"
        CAPTURED = "captured"
        FAILED = "failed"
        CANCELED = "canceled"

    id = PublicIdField(prefix="txn")
    contact = models.ForeignKey(
        "crm.Contact", on_delete=models.PROTECT, related_name="transactions"
    )
    payment_method = models.ForeignKey(
        PaymentMethod, null=True, blank=True, on_delete=models.PROTECT, related_name="transactions"
    )
    amount = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    purpose = models.CharField(max_length=30, help_text="who settles it: wallet_topup, checkout, …")
    purpose_id = models.CharField(max_length=64)
    capture_method = models.CharField(max_length=10, default="automatic")
    stripe_payment_intent_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    # The client's request (a hash of its API key and Idempotency-Key): a retry after a
    # crash resumes this transaction instead of creating a second charge.
    request_key = models.CharField(max_length=64, null=True, blank=True, unique=True)
    failure_code = models.CharField(max_length=100, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    refunded_amount = models.PositiveBigIntegerField(default=0)
    disputed = models.BooleanField(default=False)
    settled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "created_at"], name="txn_status_idx"),
            models.Index(fields=["purpose", "purpose_id"], name="txn_purpose_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(refunded_amount__lte=models.F("amount")),
                name="txn_refunds_within_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pk} {self.amount} {self.currency} {self.status}"


class StripeEvent(models.Model):
    """Every webhook event, stored under Stripe's id in the transaction that applies it:
    a second delivery finds it and changes nothing."""

    id = models.CharField(max_length=255, primary_key=True)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class Refund(models.Model):
    """Money given back. The transaction's ``refunded_amount`` is reserved under a row
    lock before Stripe is called, so concurrent refunds can never exceed the capture."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = PublicIdField(prefix="rfd")
    transaction = models.ForeignKey(Transaction, on_delete=models.PROTECT, related_name="refunds")
    amount = models.PositiveBigIntegerField()
    reason = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    stripe_refund_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    # The client's request (see Transaction.request_key): a retry finds this refund.
    request_key = models.CharField(max_length=64, null=True, blank=True, unique=True)
    failure_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.pk} {self.amount} ({self.status})"
