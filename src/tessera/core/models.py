from __future__ import annotations

from django.db import models

from tessera.core.ids import PublicIdField

SCOPE_READ = "read"
SCOPE_WRITE = "write"
SCOPE_ADMIN = "admin"
ALL_SCOPES = (SCOPE_READ, SCOPE_WRITE, SCOPE_ADMIN)


class ApiKey(models.Model):
    """A bearer key for the REST API. Only a SHA-256 digest is stored.

    Keys are 32 random bytes, so a fast digest is enough: there is nothing to brute-force
    that a slow password hash would protect.
    """

    id = PublicIdField(prefix="key")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="First characters, to recognise a key.")
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def has_scope(self, scope: str) -> bool:
        return SCOPE_ADMIN in self.scopes or scope in self.scopes

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class IdempotencyKey(models.Model):
    """One row per (API key, Idempotency-Key): the first response, kept for replay.

    The row is inserted (and committed) before the request runs, so a concurrent duplicate
    sees it and gets 409; the response is stored in the same transaction as the request's
    own writes, so a stored response always means the writes happened.
    """

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=2000)
    fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_PROGRESS)
    locked_at = models.DateTimeField()
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_content_type = models.CharField(max_length=100, blank=True)
    response_body = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "key"], name="uniq_idempotency_key"),
        ]
        indexes = [models.Index(fields=["created_at"], name="idem_created_idx")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"


class ScheduledJob(models.Model):
    """When a periodic task is next due. Workers claim a run with a conditional UPDATE, so
    with any number of workers each run is enqueued once."""

    name = models.CharField(max_length=100, primary_key=True)
    next_run_at = models.DateTimeField()
    last_enqueued_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} (next {self.next_run_at:%Y-%m-%d %H:%M})"


class WorkerHeartbeat(models.Model):
    """The last time each worker process reached the database from its periodic loop.
    ``/readyz`` reports the deployment not ready when the newest beat is too old."""

    name = models.CharField(max_length=200, unique=True, help_text="host:pid of the worker")
    host = models.CharField(max_length=150)
    pid = models.PositiveIntegerField()
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} ({self.beat_at:%Y-%m-%d %H:%M:%S})"
