"""Activities members complete to earn points."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from tessera.core.errors import NotFound, ValidationFailed
from tessera.core.lookup import get_by_id
from tessera.loyalty.errors import ActivityClosed, AlreadyCompleted
from tessera.loyalty.models import Activity, Completion, Member, WalletTransaction
from tessera.loyalty.programs import get_member, get_program
from tessera.loyalty.wallet import move_points


@dataclass(frozen=True)
class ActivitySpec:
    program_id: str
    kind: str  # question, vote or video
    title: str
    points: int
    question: str | None = None
    options: Sequence[str] | None = None
    correct_option: str | None = None
    video_url: str | None = None
    min_watch_seconds: int | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None


@dataclass(frozen=True)
class CompletionResult:
    """A completion, the wallet transaction of its points (None when it earned nothing)
    and the wallet's balance after it."""

    completion: Completion
    wallet_transaction: WalletTransaction | None
    balance_after: int


@transaction.atomic
def create_activity(spec: ActivitySpec) -> Activity:
    program = get_program(spec.program_id)
    kind = spec.kind
    options = list(spec.options or [])
    correct = spec.correct_option or ""
    _check_spec(spec, options, correct)
    return Activity.objects.create(
        program=program, kind=kind, title=spec.title, points=spec.points,
        question=spec.question or "", options=options, correct_option=correct,
        video_url=spec.video_url or "", min_watch_seconds=spec.min_watch_seconds or 0,
        starts_at=spec.starts_at, ends_at=spec.ends_at,
    )  # fmt: skip


def _check_spec(spec: ActivitySpec, options: list[str], correct: str) -> None:
    """422 for what each kind needs and does not have."""
    kind = spec.kind
    if kind in ("question", "vote") and not spec.question:
        raise ValidationFailed.field("question", f"a {kind} needs a question")
    if kind == "vote" and len(options) < 2:
        raise ValidationFailed.field("options", "a vote needs at least two options")
    if kind == "question" and not correct:
        raise ValidationFailed.field("correct_option", "a question needs its correct answer")
    if kind == "question" and options and correct not in options:
        raise ValidationFailed.field("correct_option", "must be one of the options")
    if kind == "video" and not spec.video_url:
        raise ValidationFailed.field("video_url", "a video activity needs its URL")
    starts, ends = spec.starts_at, spec.ends_at
    if starts and ends and ends <= starts:
        raise ValidationFailed.field("ends_at", "must be after starts_at")


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
def complete_activity(
    member_id: str,
    activity_id: str,
    *,
    answer: str | None = None,
    option: str | None = None,
    watched_seconds: int | None = None,
) -> CompletionResult:
    """Record a completion and credit its points. Once per member and activity: the unique
    constraint decides a race, and the loser gets 409 ``already_completed``. A wrong answer
    is recorded and earns nothing. ``answer`` answers a question, ``option`` is a vote's
    choice, ``watched_seconds`` how much of a video was watched."""
    member = get_member(member_id)
    activity = get_activity(activity_id)
    if activity.program_id != member.program_id:
        raise NotFound(f"No activity {activity_id} in this member's program")
    _check_open(activity)
    given = str(answer or option or "").strip()
    correct = _check_answer(activity, given, watched_seconds)
    try:
        with transaction.atomic():
            completion = Completion.objects.create(
                member=member, activity=activity, answer=given[:500],
                watched_seconds=watched_seconds, correct=correct,
                points_awarded=activity.points if correct else 0,
            )  # fmt: skip
    except IntegrityError as exc:
        raise AlreadyCompleted(f"{member.pk} has already completed {activity.pk}.") from exc
    if not (correct and activity.points):
        member.wallet.refresh_from_db(fields=["balance"])
        return CompletionResult(completion, None, member.wallet.balance)
    completion.wallet_transaction = _credit(member, activity, completion)
    completion.save(update_fields=["wallet_transaction"])
    wtx = completion.wallet_transaction
    return CompletionResult(completion, wtx, wtx.balance_after)


def _check_answer(activity: Activity, answer: str, watched: int | None) -> bool:
    """Whether the answer earns the points; 422 for an attempt that is not one yet."""
    if activity.kind == Activity.Kind.QUESTION:
        if not answer:
            raise ValidationFailed.field("answer", "is required for a question")
        return _norm(answer) == _norm(activity.correct_option)
    if activity.kind == Activity.Kind.VOTE:
        if answer not in activity.options:
            raise ValidationFailed.field("option", f"must be one of {activity.options}")
        return True
    if watched is None:
        raise ValidationFailed.field("watched_seconds", "is required for a video")
    if watched < activity.min_watch_seconds:
        # Not a completion yet: nothing is recorded, so watching on can still earn.
        raise ValidationFailed.field(
            "watched_seconds", f"watch at least {activity.min_watch_seconds} seconds to earn"
        )
    return True


def _credit(member: Member, activity: Activity, completion: Completion) -> WalletTransaction:
    return move_points(
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
