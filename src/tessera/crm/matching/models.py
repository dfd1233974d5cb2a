from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from tessera.core.ids import PublicIdField

OBJECT_CHOICES = [("contact", "Contact"), ("lead", "Lead"), ("account", "Account")]


class MatchingRule(models.Model):
    """A Salesforce-style matching rule: numbered field criteria and a logic expression
    over them, plus what a create or edit does on a match (allow and report, or block)."""

    class Action(models.TextChoices):
        ALLOW = "allow"
        BLOCK = "block"

    class Mode(models.TextChoices):
        # Criteria with thresholds and logic decide (Salesforce's way).
        RULES = "rules"
        # The object's trained Fellegi-Sunter model decides; criteria and logic only choose
        # which records are compared (their match keys), their thresholds are not used.
        PROBABILISTIC = "probabilistic"

    id = PublicIdField(prefix="mru")
    object = models.CharField(max_length=10, choices=OBJECT_CHOICES)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    logic = models.CharField(max_length=1000)
    action = models.CharField(max_length=5, choices=Action.choices, default=Action.ALLOW)
    mode = models.CharField(max_length=13, choices=Mode.choices, default=Mode.RULES)
    match_probability = models.FloatField(
        default=0.99,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Probabilistic mode: the lowest match probability that counts as a match.",
    )
    active = models.BooleanField(default=True)
    is_standard = models.BooleanField(default=False, editable=False)
    candidate_limit = models.PositiveIntegerField(
        default=200, help_text="Most candidates scored per lookup; reported when reached."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["object", "-is_standard", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.object})"


class MatchingCriterion(models.Model):
    rule = models.ForeignKey(MatchingRule, on_delete=models.CASCADE, related_name="criteria")
    number = models.PositiveSmallIntegerField()
    field = models.CharField(max_length=60)
    method = models.CharField(max_length=30)
    threshold = models.PositiveSmallIntegerField(default=100)
    match_blank = models.BooleanField(default=False)

    class Meta:
        ordering = ["rule", "number"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "number"], name="uniq_criterion_number"),
        ]

    def __str__(self) -> str:
        return f"{self.number}: {self.field} {self.method} >= {self.threshold}"


class MatchKey(models.Model):
    """Blocking keys: short normalised strings derived from a record for every OR group of
    every active rule. A lookup reads only records sharing a key, never the whole table."""

    object_type = models.CharField(max_length=10, choices=OBJECT_CHOICES)
    object_id = models.CharField(max_length=40)
    key = models.CharField(max_length=255)

    class Meta:
        indexes = [
            # Covering: a lookup reads the ids from the index alone, never the table.
            models.Index(fields=["object_type", "key", "object_id"], name="matchkey_lookup_idx"),
            models.Index(fields=["object_type", "object_id"], name="matchkey_owner_idx"),
        ]

    def __str__(self) -> str:
        return self.key


class NameVariant(models.Model):
    """A first-name variant added by an admin, on top of the shipped nickname table
    (e.g. a community's own short forms). Works in both directions."""

    name = models.CharField(max_length=60)
    variant = models.CharField(max_length=60)
    created_at = models.DateTimeField(auto_now_add=True)
    # Part of the rule cache's version: an edit must reach every process, not only adds.
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "variant"], name="uniq_name_variant"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ~ {self.variant}"


class MatchingModel(models.Model):
    """An object's trained Fellegi-Sunter model: per field and comparison level, how likely
    that level is among true matches (m) and among other pairs (u). Trained without labels
    by ``tessera matching train``; rules in probabilistic mode score with it (with the
    shipped default weights until it is trained)."""

    object = models.CharField(max_length=10, choices=OBJECT_CHOICES, unique=True)
    model = models.JSONField(help_text="The model as its scorer reads it (versioned).")
    records = models.PositiveIntegerField(default=0, help_text="Records it was trained on.")
    pairs = models.PositiveIntegerField(default=0, help_text="Record pairs compared in training.")
    seconds = models.FloatField(default=0.0, help_text="How long training took.")
    trained_at = models.DateTimeField()
    # Part of the rule cache's version: a new model must reach every process.
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.object} model ({self.trained_at:%Y-%m-%d %H:%M})"
