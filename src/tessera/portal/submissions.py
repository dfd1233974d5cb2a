"""Running a form's work once, and with the same transaction rules as the API.

A form that orders or pays carries a hidden key made when the page was drawn. The first
submission claims the key (committed before the work runs); a second click of the same
form waits for the first and is sent where the first one went, so it never orders or pays
twice. Work that fails releases the key: the person may correct the form and submit again.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import IntegrityError, transaction
from django.http import HttpResponse, HttpResponseRedirect

from tessera.core.errors import ProblemError
from tessera.portal.models import FormSubmission

T = TypeVar("T")
KEY_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,64}")
WAIT_SECONDS = 15.0


def new_key() -> str:
    return secrets.token_urlsafe(18)


@dataclass
class Outcome(Generic[T]):
    value: T | None = None
    error: ProblemError | None = None


def attempt(work: Callable[[], T], *, atomic: bool = True) -> Outcome[T]:
    """Run one service as the API would: in a transaction that a refusal rolls back, unless
    the refusal keeps its record (an order refused for balance keeps the refusal and the
    admin's email). Sagas that call Stripe between commits pass ``atomic=False``."""
    if not atomic:
        try:
            return Outcome(value=work())
        except ProblemError as exc:
            return Outcome(error=exc)
    with transaction.atomic():
        try:
            return Outcome(value=work())
        except ProblemError as exc:
            if not exc.keeps_writes:
                transaction.set_rollback(True)
            return Outcome(error=exc)


class Claimed:
    """Proof that this request holds the form's key; ``done`` records where it led."""

    def __init__(self, row: FormSubmission) -> None:
        self.row = row

    def done(self, url: str) -> HttpResponse:
        FormSubmission.objects.filter(pk=self.row.pk).update(
            status=FormSubmission.Status.DONE, result_url=url
        )
        return HttpResponseRedirect(url)

    def release(self) -> None:
        FormSubmission.objects.filter(pk=self.row.pk).delete()


def claim(user: Any, key: str, action: str) -> Claimed | HttpResponse:
    """The claim on ``key``, or the response for a repeat: a redirect to where the first
    submission went (waiting a little for it to finish)."""
    if not KEY_SHAPE.fullmatch(key or ""):
        key = new_key()  # a form without a key still works, just without the guard
    try:
        with transaction.atomic():
            row = FormSubmission.objects.create(user=user, key=key, action=action)
        return Claimed(row)
    except IntegrityError:
        pass
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        found = FormSubmission.objects.filter(user=user, key=key).first()
        if found is None:  # the first one failed and let go: this one may try
            return claim(user, key, action)
        if found.status == FormSubmission.Status.DONE:
            return HttpResponseRedirect(found.result_url)
        if time.monotonic() > deadline:
            return HttpResponse(
                "Your first submission of this form is still being processed. "
                "Refresh this page in a moment.",
                status=409,
                content_type="text/plain; charset=utf-8",
            )
        time.sleep(0.2)
