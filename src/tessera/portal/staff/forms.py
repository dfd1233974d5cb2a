"""The staff pages' forms."""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from tessera.events.models import Attendee, Event
from tessera.portal.forms import KeyedForm

SPACES = re.compile(r"\s+")


class CheckInForm(forms.Form):
    code = forms.CharField(
        label=_("Ticket code"),
        max_length=500,
        help_text=_("Scan the ticket's QR code, or type or paste the code printed under it."),
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "autocapitalize": "characters",
                "spellcheck": "false",
                "autofocus": True,
                "aria-describedby": "id_code_help",
            }
        ),
    )
    event = forms.ChoiceField(label=_("Event at this door"), required=False)

    def __init__(self, *args: object, events: list[Event], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        choices = [("", _("Any event"))] + [(e.pk, e.name) for e in events]
        self.fields["event"].choices = choices  # type: ignore[attr-defined]

    def clean_code(self) -> str:
        # Codes are upper case and have no spaces; a typed or wrapped one may have either.
        return SPACES.sub("", self.cleaned_data["code"]).upper()


STATUS_CHOICES = [("", _("Any status")), *Attendee.Status.choices]


class AttendeeFilter(forms.Form):
    q = forms.CharField(label=_("Name or email"), required=False, max_length=200)
    status = forms.ChoiceField(label=_("Status"), required=False, choices=STATUS_CHOICES)


class CancelForm(KeyedForm):
    refund = forms.BooleanField(label=_("Refund"), required=False)
