"""The portal's forms: validation and errors beside the fields, nothing written until valid."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from tessera.portal.submissions import new_key


class KeyedForm(forms.Form):
    """A form that acts once however often it is submitted (see ``submissions``)."""

    form_key = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if not self.is_bound:
            self.initial.setdefault("form_key", new_key())


class SigninLinkForm(forms.Form):
    email = forms.EmailField(
        label=_("Email"), max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )  # fmt: skip


class PasswordSigninForm(forms.Form):
    login = forms.CharField(
        label=_("Email or staff user name"), max_length=254,
        widget=forms.TextInput(attrs={"autocomplete": "username"}),
    )  # fmt: skip
    password = forms.CharField(
        label=_("Password"), max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )  # fmt: skip
