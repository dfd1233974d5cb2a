"""Earn: questions, votes and videos, each once."""

from __future__ import annotations

from django import forms
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from tessera.loyalty.activities import complete_activity
from tessera.loyalty.models import Activity, Completion, Member
from tessera.portal.earning import WatchReport, open_activities, report_watching, vote_results
from tessera.portal.identity import Viewer, member_page, program_member
from tessera.portal.pages import page
from tessera.portal.submissions import attempt


class AnswerForm(forms.Form):
    def __init__(self, activity: Activity, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        label = activity.question or activity.title
        if activity.options:
            self.fields["answer"] = forms.ChoiceField(
                label=label, choices=[(o, o) for o in activity.options], widget=forms.RadioSelect
            )
        else:
            self.fields["answer"] = forms.CharField(label=label, max_length=500)


@member_page
def activities(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    member = program_member(viewer)
    done = dict(
        Completion.objects.filter(member=member).values_list("activity_id", "points_awarded")
    )
    rows = list(open_activities(member.program_id, timezone.now()).order_by("-created_at")[:100])
    items = [(a, a.pk in done, done.get(a.pk, 0)) for a in rows]
    return page(request, viewer, "portal/earn.html", {"items": items}, section="earn")


def _activity(member: Member, activity_id: str) -> Activity:
    activity = (
        open_activities(member.program_id, timezone.now()).filter(pk=activity_id).first()
        or Activity.objects.filter(pk=activity_id, program_id=member.program_id).first()
    )
    if activity is None:
        raise Http404("no such activity in this program")
    return activity


@require_http_methods(["GET", "POST"])
@member_page
def activity(request: HttpRequest, viewer: Viewer, activity_id: str) -> HttpResponse:
    member = program_member(viewer)
    act = _activity(member, activity_id)
    completion = Completion.objects.filter(member=member, activity=act).first()
    form = AnswerForm(act)
    error = None
    status = 200
    if request.method == "POST" and completion is None and act.kind != Activity.Kind.VIDEO:
        form = AnswerForm(act, request.POST)
        if form.is_valid():
            field = "answer" if act.kind == Activity.Kind.QUESTION else "option"
            done = attempt(
                lambda: (
                    complete_activity(
                        member.pk, act.pk, **{field: form.cleaned_data["answer"]}
                    ).completion
                )
            )
            completion, error = done.value, done.error
            if error is not None:
                status = error.status
                completion = Completion.objects.filter(member=member, activity=act).first()
        else:
            status = 422
    context = {
        "activity": act,
        "completion": completion,
        "form": form,
        "error": error,
        "results": vote_results(act) if act.kind == Activity.Kind.VOTE and completion else None,
        "balance": member.wallet.balance if completion is None else _balance(member),
    }
    if request.headers.get("HX-Request"):
        return render(request, "portal/activity_body.html", context, status=status)
    return page(request, viewer, "portal/activity.html", context, section="earn", status=status)


def _balance(member: Member) -> int:
    member.wallet.refresh_from_db(fields=["balance"])
    return int(member.wallet.balance)


class ProgressForm(forms.Form):
    position = forms.FloatField(min_value=0, max_value=86_400 * 2)


@require_POST
@member_page
def progress(request: HttpRequest, viewer: Viewer, activity_id: str) -> HttpResponse:
    """The player's progress report (every few seconds, and at the end)."""
    member = program_member(viewer)
    act = _activity(member, activity_id)
    if act.kind != Activity.Kind.VIDEO:
        raise Http404("not a video")
    form = ProgressForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors}, status=422)
    report = WatchReport(form.cleaned_data["position"])
    outcome = attempt(lambda: report_watching(member, act, report))
    if outcome.error is not None or outcome.value is None:
        completion = Completion.objects.filter(member=member, activity=act).first()
        return JsonResponse(
            {
                "completed": completion is not None,
                "points": completion.points_awarded if completion else 0,
            }
        )
    watched = outcome.value
    body: dict[str, object] = {
        "credited_seconds": round(watched.credited_seconds, 1),
        "needed_seconds": watched.needed_seconds,
        "completed": watched.completion is not None,
    }
    if watched.completion is not None:
        body.update(points=watched.completion.points_awarded, balance=_balance(member))
    return JsonResponse(body)
