"""An event's questions as form fields, typed as the checkout types their answers (a date
as YYYY-MM-DD text, a whole number as an int), and what counts as no answer."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext as _

from tessera.events.models import Question


def question_field(q: Question, conditional: bool) -> forms.Field:
    """A form field for a question. Never ``required`` itself: a question asked only of some
    tickets' holders is checked in ``clean``; the browser is told for unconditional ones."""
    label = q.label
    choices = [(o, o) for o in q.options]
    made: forms.Field
    if q.type == Question.Type.NUMBER:
        made = forms.FloatField(label=label, widget=forms.NumberInput(attrs={"step": "any"}))
    elif q.type == Question.Type.SELECT:
        made = forms.ChoiceField(label=label, choices=[("", "—"), *choices])
    elif q.type == Question.Type.MULTISELECT:
        made = forms.MultipleChoiceField(
            label=label, choices=choices, widget=forms.CheckboxSelectMultiple
        )
    elif q.type == Question.Type.CHECKBOX:
        made = forms.BooleanField(label=label)
    elif q.type == Question.Type.DATE:
        made = forms.DateField(label=label, widget=forms.DateInput(attrs={"type": "date"}))
    elif q.type == Question.Type.EMAIL:
        made = forms.EmailField(label=label, widget=forms.EmailInput)
    elif q.type == Question.Type.PHONE:
        made = forms.CharField(label=label, widget=forms.TextInput(attrs={"type": "tel"}))
    else:
        made = forms.CharField(label=label, max_length=5000)
    made.required = False
    if q.required and not conditional and q.type != Question.Type.MULTISELECT:
        made.widget.attrs["required"] = True
    if q.required:
        made.label = f"{label} *"
    if conditional:
        names = ", ".join(i.name for i in q.items.all())
        made.help_text = _("For holders of: %(items)s") % {"items": names}
    return made


def answer_value(q: Question, value: Any) -> Any:
    """The cleaned value as the checkout takes it (a date as text, a whole number as int)."""
    if value is None:
        return None
    if q.type == Question.Type.DATE:
        return value.isoformat()
    if q.type == Question.Type.NUMBER and float(value).is_integer():
        return int(value)
    return value


def blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value is False
