"""The event registration form: attendees, tickets, add-ons, the event's questions and the
payment, built from the event's catalogue; and the small forms of the waitlist and of
cancelling a ticket.

The form checks what it can show beside a field (required, type, options, by the same
rules the checkout applies: ``events.answers.CHECKS``) so most mistakes never reach the
service; what the service still refuses comes back as ``errors`` with paths such as
``attendees.0.answers.2.value`` and is put back beside the field it names.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from tessera.core.errors import ProblemError
from tessera.events.answers import CHECKS, Refused
from tessera.events.catalogue import Catalogue
from tessera.events.models import EventItem, Question
from tessera.events.requests import AnswerIn, AttendeeIn, CheckoutIn, LineIn, PaymentIn, PersonIn
from tessera.portal.event_questions import answer_value, blank, question_field
from tessera.portal.forms import KeyedForm

# More than a household or a small team is a group booking: the organiser's business.
MAX_ATTENDEES = 10
EXTRA_KINDS = (EventItem.Kind.ADDON, EventItem.Kind.PRODUCT)
PATH = re.compile(r"attendees\.(\d+)\.(answers|items)(?:\.([^.]+))?")


def service_key(user: Any, action: str, form_key: str) -> str:
    """The service's idempotency key for one portal form: a retry resumes, never repeats."""
    return hashlib.sha256(f"portal:{action}:{user.pk}:{form_key}".encode()).hexdigest()


def attendee_count(raw: object) -> int:
    try:
        return max(1, min(MAX_ATTENDEES, int(str(raw))))
    except (TypeError, ValueError):
        return 1


@dataclass
class Sent:
    """Which question and item each answer and line of the request was, to map the
    service's index paths back to form fields."""

    answers: dict[int | None, list[str]] = field(default_factory=dict)
    items: dict[int, list[str]] = field(default_factory=dict)


class RegistrationForm(KeyedForm):
    attendees = forms.IntegerField(widget=forms.HiddenInput, min_value=1, max_value=MAX_ATTENDEES)
    promo_code = forms.CharField(label=gettext_lazy("Promo code"), max_length=64, required=False)
    waitlist_token = forms.CharField(widget=forms.HiddenInput, required=False, max_length=200)

    def __init__(
        self,
        *args: Any,
        listed: Catalogue,
        count: int,
        payments: list[tuple[str, str]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.count, self.sent = count, Sent()
        self.problem: ProblemError | None = None
        self.initial.setdefault("attendees", count)
        items = sorted(listed.items.values(), key=lambda i: (i.position, i.pk))
        self.tickets = [i for i in items if i.active and i.kind == EventItem.Kind.TICKET]
        self.extras = [i for i in items if i.active and i.kind in EXTRA_KINDS]
        self.questions = list(listed.questions)
        for a in range(count):
            self._attendee_fields(a)
        for q in self.questions:
            if not q.per_attendee:
                self.fields[f"q_{q.pk}"] = question_field(q, conditional=False)
        if payments:
            self.fields["payment"] = forms.ChoiceField(
                label=_("Pay with"), choices=payments, widget=forms.RadioSelect
            )
            self.initial.setdefault("payment", payments[0][0])
            self.fields["payment_method_id"] = forms.CharField(
                widget=forms.HiddenInput, required=False, max_length=255
            )

    def _attendee_fields(self, a: int) -> None:
        self.fields[f"a{a}_first_name"] = forms.CharField(label=_("First name"), max_length=100)
        self.fields[f"a{a}_last_name"] = forms.CharField(label=_("Last name"), max_length=100)
        self.fields[f"a{a}_email"] = forms.EmailField(label=_("Email"), max_length=254)
        for name, auto in (("first_name", "given-name"), ("last_name", "family-name")):
            self.fields[f"a{a}_{name}"].widget.attrs["autocomplete"] = auto if a == 0 else "off"
        choices = [(t.pk, t.name) for t in self.tickets]
        self.fields[f"a{a}_ticket"] = forms.ChoiceField(
            label=_("Ticket"), widget=forms.RadioSelect, choices=choices
        )
        if len(self.tickets) == 1:
            self.initial.setdefault(f"a{a}_ticket", self.tickets[0].pk)
        for extra in self.extras:
            most = extra.max_per_order or 20
            self.fields[f"a{a}_item_{extra.pk}"] = forms.IntegerField(
                label=extra.name, min_value=0, max_value=most, required=False, initial=0
            )
        for q in self.questions:
            if q.per_attendee:
                conditional = bool(q.items.all())
                self.fields[f"a{a}_q_{q.pk}"] = question_field(q, conditional)

    def label_choices(self, labels: dict[str, str]) -> None:
        """Ticket choices with their price and availability, written by the view."""
        for a in range(self.count):
            choice = self.fields[f"a{a}_ticket"]
            if isinstance(choice, forms.ChoiceField):
                choice.choices = [(t.pk, labels.get(t.pk, t.name)) for t in self.tickets]

    # --- checking ---------------------------------------------------------------------

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for a in range(self.count):
            bought = self._bought(a, data)
            for q in self.questions:
                applies = not (ids := {i.pk for i in q.items.all()}) or bool(ids & bought)
                if q.per_attendee and applies:
                    self._check_answer(q, f"a{a}_q_{q.pk}", data)
        for q in self.questions:
            if not q.per_attendee:
                self._check_answer(q, f"q_{q.pk}", data)
        if data.get("payment") == "card" and not data.get("payment_method_id"):
            self.add_error("payment", _("Enter your card details to pay by card."))
        return data

    def _bought(self, a: int, data: dict[str, Any]) -> set[str]:
        bought = {str(data.get(f"a{a}_ticket") or "")}
        bought |= {e.pk for e in self.extras if data.get(f"a{a}_item_{e.pk}")}
        return bought

    def _check_answer(self, q: Question, name: str, data: dict[str, Any]) -> None:
        if name in self.errors:
            return
        value = answer_value(q, data.get(name))
        if blank(value) and q.type != Question.Type.CHECKBOX:
            if q.required:
                self.add_error(name, _("This question needs an answer."))
            return
        try:
            CHECKS[q.type](q, bool(value) if q.type == Question.Type.CHECKBOX else value)
        except Refused as exc:
            self.add_error(name, _("This answer %(problem)s.") % {"problem": str(exc)})

    # --- the request ------------------------------------------------------------------

    def checkout_in(self, event_id: str, buyer: PersonIn, payment: PaymentIn | None) -> CheckoutIn:
        data = self.cleaned_data
        attendees = tuple(self._attendee_in(a, data) for a in range(self.count))
        order = [q for q in self.questions if not q.per_attendee]
        answers = self._answers(order, lambda q: f"q_{q.pk}", None, data)
        return CheckoutIn(
            event_id=event_id,
            buyer=buyer,
            attendees=attendees,
            answers=answers,
            promo_code=(data.get("promo_code") or "").strip() or None,
            payment=payment,
            waitlist_token=data.get("waitlist_token") or None,
        )

    def _attendee_in(self, a: int, data: dict[str, Any]) -> AttendeeIn:
        ticket = str(data[f"a{a}_ticket"])
        lines = [LineIn(ticket, 1)]
        lines += [
            LineIn(e.pk, int(q))
            for e in self.extras
            if (q := data.get(f"a{a}_item_{e.pk}") or 0) > 0
        ]
        self.sent.items[a] = [line.item_id for line in lines]
        bought = {line.item_id for line in lines}
        asked = [
            q for q in self.questions
            if q.per_attendee and (not (ids := {i.pk for i in q.items.all()}) or ids & bought)
        ]  # fmt: skip
        person = PersonIn(
            data[f"a{a}_first_name"].strip(), data[f"a{a}_last_name"].strip(), data[f"a{a}_email"]
        )
        answers = self._answers(asked, lambda q: f"a{a}_q_{q.pk}", a, data)
        return AttendeeIn(person, tuple(lines), answers)

    def _answers(
        self, asked: list[Question], name: Any, a: int | None, data: dict[str, Any]
    ) -> tuple[AnswerIn, ...]:
        out = []
        for q in asked:
            value = answer_value(q, data.get(name(q)))
            if q.type == Question.Type.CHECKBOX:
                value = bool(value)
            elif blank(value):
                continue  # no answer: the service asks for required ones itself
            out.append(AnswerIn(q.pk, value))
        self.sent.answers[a] = [answer.question_id for answer in out]
        return tuple(out)

    # --- the service's refusal, beside the fields -------------------------------------

    def show_problem(self, problem: ProblemError) -> None:
        self.problem = problem
        if not problem.errors:
            self.add_error(None, problem.detail)
        for error in problem.errors or []:
            name = self.field_for(str(error.get("field") or ""))
            message = str(error.get("message") or problem.detail)
            if name in self.fields and name not in ("payment_method_id", "waitlist_token"):
                self.add_error(name, message)
            else:
                self.add_error(None, message)

    def field_for(self, path: str) -> str:
        if path == "promo_code":
            return "promo_code"
        if path.startswith("payment") and "payment" in self.fields:
            return "payment"
        if path.startswith("answers."):
            index = path.split(".")[1]
            return self._answer_field(None, index, "q_")
        match = PATH.match(path)
        if match is None:
            return ""
        a, kind, rest = int(match[1]), match[2], match[3]
        if kind == "items":
            sent = self.sent.items.get(a, [])
            if rest is None or not rest.isdigit() or int(rest) >= len(sent) or int(rest) == 0:
                return f"a{a}_ticket"
            return f"a{a}_item_{sent[int(rest)]}"
        return self._answer_field(a, rest or "", f"a{a}_q_")

    def _answer_field(self, a: int | None, index: str, prefix: str) -> str:
        if not index.isdigit():  # a question id, or a whole-list message
            return f"{prefix}{index}" if index else ""
        sent = self.sent.answers.get(a, [])
        return f"{prefix}{sent[int(index)]}" if int(index) < len(sent) else ""

    def mark_invalid(self) -> None:
        """Tell assistive technology which fields are wrong and where the message is."""
        for name in self.errors:
            if name in self.fields:
                attrs = self.fields[name].widget.attrs
                attrs["aria-invalid"] = "true"
                attrs["aria-describedby"] = f"id_{name}_errors"

    # --- for the template -------------------------------------------------------------

    def groups(self) -> list[dict[str, Any]]:
        """Each attendee's bound fields: who they are, their ticket, add-ons, questions."""
        out = []
        for a in range(self.count):
            out.append(
                {
                    "number": a + 1,
                    "person": [self[f"a{a}_{n}"] for n in ("first_name", "last_name", "email")],
                    "ticket": self[f"a{a}_ticket"],
                    "extras": [self[f"a{a}_item_{e.pk}"] for e in self.extras],
                    "questions": [self[f"a{a}_q_{q.pk}"] for q in self.questions if q.per_attendee],
                }
            )
        return out

    def order_questions(self) -> list[forms.BoundField]:
        return [self[f"q_{q.pk}"] for q in self.questions if not q.per_attendee]


def typed_values(form: forms.Form) -> dict[str, Any]:
    """What was typed into a submitted form, as initial values for a redrawn one (adding an
    attendee redraws without checking, so no errors show for fields not filled in yet)."""
    return {
        name: f.widget.value_from_datadict(form.data, form.files, form.add_prefix(name))
        for name, f in form.fields.items()
        if name != "attendees"
    }


class WaitlistForm(KeyedForm):
    item_id = forms.CharField(widget=forms.HiddenInput, max_length=40)


class CancelForm(KeyedForm):
    pass
