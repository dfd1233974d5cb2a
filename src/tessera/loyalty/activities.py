"""Activities members complete to earn points."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from tessera.core.errors import Conflict, NotFound, ValidationFailed
from tessera.core.lookup import get_by_id
from tessera.loyalty.models import Activity, Completion, WalletTransaction
from tessera.loyalty.programs import get_member, get_program
from tessera.loyalty.wallet import move_points


class AlreadyCompleted(Conflict):
    code = "already_completed"
    title = "Activity already completed"


class ActivityClosed(Conflict):
    code = "activity_closed"
    title = "Activity is not open"


@transaction.atomic
def create_activity(data: Mapping[str, Any]) -> Activity:
    program = get_program(data["program_id"])
    kind = data["kind"]
    options = list(data.get("options") or [])
    correct = data.get("correct_option") or ""
    if kind in ("question", "vote") and not data.get("question"):
        raise ValidationFailed.field("question", f"a {kind} needs a question")
    if kind == "vote" and len(options) < 2:
        raise ValidationFailed.field("options", "a vote needs at least two options")
    if kind == "question" and not correct:
        raise ValidationFailed.field("correct_option", "a question needs its correct answer")
    if kind == "question" and options and correct not in options:
        raise ValidationFailed.field("correct_option", "must be one of the options")
    if kind == "video" and not data.get("video_url"):
        raise ValidationFailed.field("video_url", "a video activity needs its URL")
    starts, ends = data.get("starts_at"), data.get("ends_at")
    if starts and ends and ends <= starts:
        raise ValidationFailed.field("ends_at", "must be after starts_at")
    return Activity.objects.create(
        program=program, kind=kind, title=data["title"], points=data["points"],
        question=data.get("question") or "", options=options, correct_option=correct,
        video_url=data.get("video_url") or "", min_watch_seconds=data.get("min_watch_seconds") or 0,
        starts_at=starts, ends_at=ends,
    )  # fmt: skip


def get_activity(activity_id: str) -> Activity:
    return get_by_id(Activity.objects.select_related("program"), activity_id, "activity")


def _check_open(activity: Activity) -> None:
    now = timezone.now()
    if not activity.active:
        raise ActivityClosed("This activity has been switched off.")
    if activity.starts_at and now < activity.starts_at:
        raise ActivityClosed(f"This activity opens at {activity.starts_at.isoformat()}.")
    if activity.ends_at and now >= activity.ends_at:
        raise ActivityClosed(f"This activity closed at {activity.ends_at.isoformat()}.")


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


@transaction.atomic
def complete_activity(member_id: str, activity_id: str, data: Mapping[str, Any]) -> Completion:
    """Record a completion and credit its points. Once per member and activity: the unique
    constraint decides a race, and the loser gets 409 ``already_completed``. A wrong answer
    is recorded and earns nothing."""
    member = get_member(member_id)
    activity = get_activity(activity_id)
    if activity.program_id != member.program_id:
        raise NotFound(f"No activity {activity_id} in this member's program")
    _check_open(activity)
    answer = str(data.get("answer") or data.get("option") or "").strip()
    watched = data.get("watched_seconds")
    correct = True
    if activity.kind == Activity.Kind.QUESTION:
        if not answer:
            raise ValidationFailed.field("answer", "is required for a question")
        correct = _norm(answer) == _norm(activity.correct_option)
    elif activity.kind == Activity.Kind.VOTE:
        if answer not in activity.options:
            raise ValidationFailed.field("option", f"must be one of {activity.options}")
    else:
        if watched is None:
            raise ValidationFailed.field("watched_seconds", "is required for a video")
        if watched < activity.min_watch_seconds:
            # Not a completion yet: nothing is recorded, so watching on can still earn.
            raise ValidationFailed.field(
                "watched_seconds", f"watch at least {activity.min_watch_seconds} seconds to earn"
            )
    try:
        with transaction.atomic():
            completion = Completion.objects.create(
                member=member, activity=activity, answer=answer[:500], watched_seconds=watched,
                correct=correct, points_awarded=activity.points if correct else 0,
            )  # fmt: skip
    except IntegrityError as exc:
        raise AlreadyCompleted(f"{member.pk} has already completed {activity.pk}.") from exc
    if correct and activity.points:
        completion.wallet_transaction = move_points(
            member,
            type=WalletTransaction.Type.POINTS_EARNED,
            points=activity.points,
            reference=f"completion:{completion.pk}",
            counter=member.program.issuance_account,
            object_type="completion",
            object_id=completion.pk,
            detail={"activity_id": activity.pk, "activity": activity.title, "kind": activity.kind},
            expires=True,
        )
        completion.save(update_fields=["wallet_transaction"])
    return completion
