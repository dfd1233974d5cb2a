"""Profile: contact details (edited through the duplicate rules), email choices, password."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.forms import SetPasswordForm
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST

from tessera.crm.services import ContactChanges, set_email_opt_out, update_contact
from tessera.portal.identity import Viewer, member_page
from tessera.portal.models import PortalAccount
from tessera.portal.pages import page
from tessera.portal.submissions import attempt
from tessera.portal.views.account import set_language_cookie

DETAIL_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "street",
    "city",
    "postal_code",
    "country",
)


class DetailsForm(forms.Form):
    first_name = forms.CharField(label=_("First name"), max_length=120, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=120)
    email = forms.EmailField(label=_("Email"), max_length=254)
    phone = forms.CharField(label=_("Phone"), max_length=40, required=False)
    street = forms.CharField(label=_("Street"), max_length=255, required=False)
    city = forms.CharField(label=_("City"), max_length=120, required=False)
    postal_code = forms.CharField(label=_("Postal code"), max_length=32, required=False)
    country = forms.CharField(label=_("Country"), max_length=80, required=False)
    reminders = forms.BooleanField(
        label=_("Email me reminders (low balance)"), required=False,
        help_text=_("Receipts, tickets and sign-in links are always sent."),
    )  # fmt: skip
    locale = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)


@require_http_methods(["GET", "POST"])
@member_page
def profile(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    contact = viewer.contact
    account = PortalAccount.objects.get(user=viewer.user)
    initial = {f: getattr(contact, f) for f in DETAIL_FIELDS}
    initial.update(reminders=not contact.email_opt_out, locale=account.locale or "en")
    if request.method == "GET":
        return _page(request, viewer, DetailsForm(initial=initial))
    form = DetailsForm(request.POST, initial=initial)
    if not form.is_valid():
        return _page(request, viewer, form, status=422)
    data = {f: form.cleaned_data[f] for f in DETAIL_FIELDS}

    def save() -> None:
        update_contact(contact.pk, ContactChanges(**data))
        set_email_opt_out(contact.pk, not form.cleaned_data["reminders"])
        PortalAccount.objects.filter(pk=account.pk).update(locale=form.cleaned_data["locale"])

    outcome = attempt(save)
    if outcome.error is not None:
        for e in outcome.error.errors or []:
            if e.get("field") in form.fields:
                form.add_error(e["field"], e["message"])
        if not form.errors:
            form.add_error(None, outcome.error.detail)
        return _page(request, viewer, form, status=outcome.error.status)
    messages.success(request, _t("Your profile is saved."))
    response = HttpResponseRedirect("/profile")
    set_language_cookie(response, form.cleaned_data["locale"])
    return response


def _page(
    request: HttpRequest, viewer: Viewer, form: DetailsForm, status: int = 200
) -> HttpResponse:
    context = {"form": form, "password_form": SetPasswordForm(viewer.user)}
    return page(request, viewer, "portal/profile.html", context, section="profile", status=status)


@require_POST
@member_page
def password(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    form = SetPasswordForm(viewer.user, request.POST)
    if not form.is_valid():
        context = {
            "form": DetailsForm(initial={f: getattr(viewer.contact, f) for f in DETAIL_FIELDS}),
            "password_form": form,
        }
        return page(request, viewer, "portal/profile.html", context, section="profile", status=422)
    with transaction.atomic():
        form.save()
    update_session_auth_hash(request, form.user)  # stay signed in on this device
    messages.success(request, _t("Your password is set. You can now sign in with it."))
    return HttpResponseRedirect("/profile")
