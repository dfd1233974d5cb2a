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
    # What the payment pays for, when that is an invoice (a checkout): set when it settles.
    invoice = models.ForeignKey(
        "billing.Invoice",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="transactions",
    )
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


# --- invoices and credit notes -------------------------------------------------------------
#
# Billing sits below ``events`` and ``loyalty``, so a line names what it sells by plain ids
# (``item_id``, ``attendee_id``) rather than foreign keys into those apps. Services in
# ``billing.invoices`` and ``billing.credit_notes`` are the only writers: an issued invoice
# never changes (refunds and cancellations issue credit notes), which the admin and the API
# respect by being read only.


class Invoice(models.Model):
    """An invoice or a credit note. A credit note is an Invoice of its own kind with its own
    number, negative amounts, and ``credits`` pointing at the invoice it reduces."""

    class Kind(models.TextChoices):
        INVOICE = "invoice"
        CREDIT_NOTE = "credit_note"

    class Status(models.TextChoices):
        DRAFT = "draft"
        OPEN = "open"
        PAID = "paid"
        VOID = "void"

    id = PublicIdField(prefix="inv")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.INVOICE)
    # Allocated when issued, from InvoiceSequence: gapless per prefix and year.
    number = models.CharField(max_length=32, null=True, blank=True, unique=True)
    prefix = models.CharField(max_length=8, default="INV")
    bill_to = models.ForeignKey("crm.Contact", on_delete=models.PROTECT, related_name="invoices")
    status = models.CharField(max_length=5, choices=Status.choices, default=Status.DRAFT)
    currency = models.CharField(max_length=3)
    subtotal = models.BigIntegerField(default=0, help_text="sum of quantity x unit price")
    discount = models.BigIntegerField(default=0)
    tax = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0, help_text="payable; negative for a credit note")
    tax_breakdown = models.JSONField(default=list, blank=True, help_text="[{rate_bp, net, tax}]")
    credits = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="credit_notes"
    )
    reference = models.CharField(max_length=64, blank=True, db_index=True)
    reason = models.CharField(max_length=255, blank=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Issued means numbered and dated; a draft or a void invoice (voided as a
            # draft) never had a number.
            models.CheckConstraint(
                condition=models.Q(status__in=["draft", "void"], number__isnull=True)
                | models.Q(
                    status__in=["open", "paid"], number__isnull=False, issued_at__isnull=False
                ),
                name="invoice_issued_has_number",
            ),
            models.CheckConstraint(
                condition=models.Q(kind="invoice", credits__isnull=True, total__gte=0)
                | models.Q(kind="credit_note", credits__isnull=False, total__lte=0),
                name="invoice_kind_sign_and_target",
            ),
        ]

    def __str__(self) -> str:
        return self.number or f"{self.get_kind_display()} {self.pk} ({self.status})"


class InvoiceLine(models.Model):
    """One line: ``net + tax == amount`` (what the line costs, tax included). On a credit
    note the amounts are negative and ``credits_line`` is the invoice line it gives back,
    so later credit notes know what is left of each line (and of each tax rate)."""

    id = PublicIdField(prefix="invl")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="lines")
    item_id = models.CharField(max_length=40, blank=True)
    attendee_id = models.CharField(max_length=40, blank=True)
    description = models.CharField(max_length=255)
    quantity = models.IntegerField()
    unit_price = models.BigIntegerField()
    discount = models.BigIntegerField(default=0)
    tax_rate_bp = models.PositiveIntegerField(default=0, help_text="basis points: 1900 = 19%")
    tax_inclusive = models.BooleanField(default=False)
    net = models.BigIntegerField()
    tax = models.BigIntegerField()
    amount = models.BigIntegerField()
    position = models.PositiveIntegerField(default=0)
    credits_line = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="credit_lines"
    )

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount=models.F("net") + models.F("tax")),
                name="invoice_line_net_plus_tax",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.description}"


class InvoiceSequence(models.Model):
    """The last number issued per prefix and year. Incremented in the issuing transaction,
    so a rollback gives the number back: gapless, unlike a database sequence."""

    prefix = models.CharField(max_length=8)
    year = models.PositiveSmallIntegerField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prefix", "year"], name="invoice_sequence_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}-{self.year}: {self.last}"
