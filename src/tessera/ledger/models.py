"""A double-entry ledger. Every balance change is a JournalEntry whose Postings sum to zero
per asset; an account's balance is the sum of its postings (cached on the account and
checked by ``tessera ledger verify``). Entries are immutable: corrections are new entries."""

from __future__ import annotations

from typing import Any

from django.db import models

from tessera.core.ids import PublicIdField


class ImmutableError(RuntimeError):
    pass


class LedgerAccount(models.Model):
    id = PublicIdField(prefix="lac")
    code = models.CharField(max_length=120, unique=True, help_text="e.g. wallet:mem_…")
    name = models.CharField(max_length=200)
    asset = models.CharField(max_length=3, help_text="ISO 4217 currency, or PTS for points")
    allow_negative = models.BooleanField(default=False)
    balance = models.BigIntegerField(default=0, help_text="Cached sum of postings")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # The database itself refuses a negative balance where it is not allowed.
            models.CheckConstraint(
                condition=models.Q(allow_negative=True) | models.Q(balance__gte=0),
                name="ledger_account_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.asset})"


class JournalEntry(models.Model):
    id = PublicIdField(prefix="jen")
    kind = models.CharField(max_length=40)
    reference = models.CharField(
        max_length=200, unique=True, help_text="Idempotency: one entry per reference, ever"
    )
    memo = models.CharField(max_length=255, blank=True)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "journal entries"
        indexes = [models.Index(fields=["object_type", "object_id"], name="entry_object_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.reference}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ImmutableError("journal entries are immutable; post a correcting entry")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ImmutableError("journal entries are immutable; post a correcting entry")


class Posting(models.Model):
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="postings")
    amount = models.BigIntegerField(help_text="Signed minor units: + increases the balance")

    class Meta:
        indexes = [models.Index(fields=["account", "id"], name="posting_account_idx")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.amount:+d}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ImmutableError("postings are immutable")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ImmutableError("postings are immutable")
