from __future__ import annotations

from django.db import models

from tessera.core.ids import PublicIdField


class Program(models.Model):
    id = PublicIdField(prefix="prg")
    name = models.CharField(max_length=200)
    points_per_unit = models.PositiveIntegerField(
        help_text="Points credited per 1 major unit bought (100 per 1.00 USD)"
    )
    currency = models.CharField(max_length=3)
    low_balance_threshold = models.PositiveBigIntegerField(default=0)
    points_expire_after_days = models.PositiveIntegerField(null=True, blank=True)
    attendance_points = models.PositiveIntegerField(default=0)
    admin_email = models.EmailField(blank=True, help_text="Defaults to TESSERA_ADMIN_EMAIL")
    # The program's side of every points movement (double entry): points it has issued
    # go negative here as they go positive in wallets.
    issuance_account = models.OneToOneField(
        "ledger.LedgerAccount", on_delete=models.PROTECT, related_name="+"
    )
    redemption_account = models.OneToOneField(
        "ledger.LedgerAccount", on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Member(models.Model):
    id = PublicIdField(prefix="mem")
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="members")
    contact = models.ForeignKey("crm.Contact", on_delete=models.PROTECT, related_name="memberships")
    wallet = models.OneToOneField(
        "ledger.LedgerAccount", on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["program", "contact"], name="uniq_member_per_program"),
        ]

    def __str__(self) -> str:
        return f"{self.contact} in {self.program}"


class WalletTransaction(models.Model):
    """What the member sees: one line per movement of their points."""

    class Type(models.TextChoices):
        CREDIT_PURCHASED = "credit_purchased", "Credit Purchased"
        ORDER_PLACED = "order_placed", "Order Placed by Members"
        POINTS_EARNED = "points_earned", "Points Earned"
        ORDER_REFUNDED = "order_refunded", "Order Refunded"
        CREDIT_REFUNDED = "credit_refunded", "Credit Refunded"
        CREDIT_REFUND_REVERSED = "credit_refund_reversed", "Credit Refund Reversed"
        ADJUSTMENT = "adjustment", "Adjustment"
        POINTS_EXPIRED = "points_expired", "Points Expired"

    id = PublicIdField(prefix="wtx")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="transactions")
    type = models.CharField(max_length=30, choices=Type.choices)
    points = models.BigIntegerField()
    balance_after = models.BigIntegerField()
    reference = models.CharField(max_length=64, blank=True, help_text="The order, activity, …")
    detail = models.JSONField(default=dict, blank=True)
    journal_entry = models.OneToOneField(
        "ledger.JournalEntry", on_delete=models.PROTECT, related_name="wallet_transaction"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["member", "-id"], name="wtx_member_idx"),
            # The staff dashboard sums each type over a date range: one tight range per type,
            # and with the points in the key the totals come from the index, not the wide rows.
            models.Index(fields=["type", "created_at", "points"], name="wtx_type_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()} {self.points:+d}"

    @property
    def label(self) -> str:
        return str(self.Type(self.type).label)


class PointLot(models.Model):
    """Points credited together, spent first-in first-out; earned points may expire."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="lots")
    source = models.ForeignKey(WalletTransaction, on_delete=models.PROTECT, related_name="+")
    points = models.BigIntegerField()
    remaining = models.BigIntegerField()
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["member", "id"], name="lot_member_idx"),
            # The member's points about to expire (the portal's home page) in one range.
            models.Index(fields=["member", "expires_at"], name="lot_member_expiry_idx"),
            models.Index(fields=["expires_at"], name="lot_expiry_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(remaining__gte=0) & models.Q(remaining__lte=models.F("points")),
                name="lot_remaining_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"lot {self.pk}: {self.remaining}/{self.points}"


class LotDraw(models.Model):
    """Points a debit took from a lot, so a refund can put them back where they came from."""

    lot = models.ForeignKey(PointLot, on_delete=models.PROTECT, related_name="draws")
    debit = models.ForeignKey(WalletTransaction, on_delete=models.PROTECT, related_name="draws")
    points = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.points} from lot {self.lot_id}"


class Activity(models.Model):
    class Kind(models.TextChoices):
        QUESTION = "question"
        VOTE = "vote"
        VIDEO = "video"

    id = PublicIdField(prefix="act")
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="activities")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    title = models.CharField(max_length=200)
    points = models.PositiveIntegerField()
    question = models.TextField(blank=True)
    options = models.JSONField(default=list, blank=True)
    correct_option = models.CharField(max_length=200, blank=True)
    video_url = models.URLField(blank=True)
    min_watch_seconds = models.PositiveIntegerField(default=0)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "activities"

    def __str__(self) -> str:
        return self.title


class Completion(models.Model):
    id = PublicIdField(prefix="cmp")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="completions")
    activity = models.ForeignKey(Activity, on_delete=models.PROTECT, related_name="completions")
    answer = models.CharField(max_length=500, blank=True)
    watched_seconds = models.PositiveIntegerField(null=True, blank=True)
    correct = models.BooleanField(default=True)
    points_awarded = models.PositiveIntegerField(default=0)
    wallet_transaction = models.OneToOneField(
        WalletTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Once per member per activity, enforced where races cannot get past it.
            models.UniqueConstraint(fields=["member", "activity"], name="uniq_completion"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} did {self.activity_id}"


class Product(models.Model):
    id = PublicIdField(prefix="prd")
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="products")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    price_points = models.PositiveIntegerField()
    stock = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: unlimited")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Order(models.Model):
    class Status(models.TextChoices):
        PLACED = "placed"
        REFUNDED = "refunded"
        REFUSED = "refused"  # kept as the record of a refusal for lack of balance

    id = PublicIdField(prefix="ord")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=10, choices=Status.choices)
    total_points = models.PositiveBigIntegerField()
    wallet_transaction = models.OneToOneField(
        WalletTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    refund_transaction = models.OneToOneField(
        WalletTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # What the wallet held when the order was refused: the record of why, which later
    # movements of the wallet must not rewrite.
    balance_at_refusal = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The staff dashboard counts refusals per week.
        indexes = [models.Index(fields=["status", "created_at"], name="order_status_idx")]

    def __str__(self) -> str:
        return f"{self.pk} ({self.status})"

    @property
    def balance_after(self) -> int:
        """The wallet's balance right after this order's last movement (its payment or its
        refund), or at its refusal."""
        latest = self.refund_transaction or self.wallet_transaction
        if latest is not None:
            return latest.balance_after
        if self.balance_at_refusal is not None:
            return self.balance_at_refusal
        # Refusals recorded before the balance was kept: the wallet as it is now.
        return int(self.member.wallet.balance)


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()
    unit_points = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_id}"

    @property
    def total(self) -> int:
        return self.quantity * self.unit_points
