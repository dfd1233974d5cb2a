"""Earning in the portal: which activities are open, vote results, and the video watch
that the server counts itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from tessera.loyalty.activities import complete_activity
from tessera.loyalty.models import Activity, Completion, Member
from tessera.portal.models import VideoWatch

# A report may run this far ahead of the wall clock (the player's clock, a report's delay).
CLOCK_SLACK_SECONDS = 2.0


def open_activities(program_id: str, now: datetime) -> QuerySet[Activity]:
    return Activity.objects.filter(program_id=program_id, active=True).filter(
        Q(starts_at__isnull=True) | Q(starts_at__lte=now),
        Q(ends_at__isnull=True) | Q(ends_at__gt=now),
    )


def vote_results(activity: Activity) -> list[tuple[str, int, int]]:
    """Each option, its votes and its share in percent, in the activity's order."""
    counts = dict(
        Completion.objects.filter(activity=activity)
        .values_list("answer")
        .annotate(n=Count("id"))
        .values_list("answer", "n")
    )
    total = sum(counts.values()) or 1
    return [(o, counts.get(o, 0), round(100 * counts.get(o, 0) / total)) for o in activity.options]


@dataclass(frozen=True)
class WatchReport:
    position: float  # seconds into the video, as the player says


@dataclass(frozen=True)
class Watched:
    credited_seconds: float
    needed_seconds: int
    completion: Completion | None  # set once the points are earned


def report_watching(member: Member, activity: Activity, report: WatchReport) -> Watched:
    """Count a progress report. The server credits the video's advance since the previous
    report, but never more than the wall time that passed: so seeking to the end, or one
    report claiming the whole video, earns nothing until the time was really spent.
    The points come with the report that reaches ``min_watch_seconds``."""
    now = timezone.now()
    with transaction.atomic():
        watch, created = VideoWatch.objects.select_for_update().get_or_create(
            member=member, activity=activity, defaults={"last_report_at": now}
        )
        if not created:
            elapsed = (now - watch.last_report_at).total_seconds() + CLOCK_SLACK_SECONDS
            advance = max(0.0, report.position - watch.position)
            watch.credited_seconds += min(advance, elapsed)
        watch.position = max(0.0, report.position)
        watch.last_report_at = now
        watch.reports += 1
        watch.save()
    completion = Completion.objects.filter(member=member, activity=activity).first()
    if completion is None and watch.credited_seconds >= activity.min_watch_seconds:
        with transaction.atomic():
            completion = complete_activity(
                member.pk, activity.pk, watched_seconds=int(watch.credited_seconds)
            ).completion
    return Watched(watch.credited_seconds, activity.min_watch_seconds, completion)
