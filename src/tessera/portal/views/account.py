"""Signing in and out: an emailed single-use link, or a password once one is set."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST
from django_ratelimit.core import is_ratelimited
from sesame.utils import get_user

from tessera.portal.forms import PasswordSigninForm, SigninLinkForm
from tessera.portal.identity import contact_for_email
from tessera.portal.models import PortalAccount
from tessera.portal.signin import LinkRequest, send_signin_link


def safe_next(request: HttpRequest, raw: str | None) -> str:
    """Where to go after signing in: a path on this site, else home."""
    if (
        raw
        and url_has_allowed_host_and_scheme(
            raw, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
        and raw.startswith("/")
        and not raw.startswith("//")
    ):
        return raw
    return "/"


def _limited(request: HttpRequest, group: str, key: Any, rate: str) -> bool:
    return is_ratelimited(request, group=group, key=key, rate=rate, increment=True)


def _email_key(field: str) -> Any:
    def key(group: str, request: HttpRequest) -> str:
        return str(request.POST.get(field, "")).strip().lower()

    return key


def _too_many(request: HttpRequest, *, email_field: str) -> bool:
    """Per address and per client: both count every attempt."""
    by_address = _limited(
        request, "signin-address", _email_key(email_field), settings.TESSERA_SIGNIN_RATE_PER_EMAIL
    )
    by_client = _limited(request, "signin-client", "ip", settings.TESSERA_SIGNIN_RATE_PER_CLIENT)
    return by_address or by_client


def rate_limited(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "portal/rate_limited.html", status=429)


def _site_url(request: HttpRequest) -> str:
    return settings.TESSERA_SITE_URL or f"{request.scheme}://{request.get_host()}"


@require_http_methods(["GET", "POST"])
def signin(request: HttpRequest) -> HttpResponse:
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if request.user.is_authenticated and request.method == "GET":
        return HttpResponseRedirect(next_url)
    link_form, password_form = SigninLinkForm(), PasswordSigninForm()
    if request.method == "POST" and request.POST.get("mode") == "password":
        password_form = PasswordSigninForm(request.POST)
        if _too_many(request, email_field="login"):
            return rate_limited(request)
        if password_form.is_valid():
            user = _password_user(request, **password_form.cleaned_data)
            if user is not None:
                return _signed_in(
                    request, user, "django.contrib.auth.backends.ModelBackend", next_url
                )
            password_form.add_error(None, _("That email and password do not match."))
    elif request.method == "POST":
        link_form = SigninLinkForm(request.POST)
        if _too_many(request, email_field="email"):
            return rate_limited(request)
        if link_form.is_valid():
            email = link_form.cleaned_data["email"]
            send_signin_link(LinkRequest(email, next_url, _site_url(request)))
            # The same answer whether or not the address is known.
            return render(request, "portal/signin_sent.html", {"email": email})
    context = {"link_form": link_form, "password_form": password_form, "next": next_url}
    return render(request, "portal/signin.html", context, status=422 if request.POST else 200)


def _password_user(request: HttpRequest, *, login: str, password: str) -> AbstractBaseUser | None:
    username = login.strip()
    if "@" in username:
        contact = contact_for_email(username)
        account = PortalAccount.objects.filter(contact=contact).select_related("user").first()
        if account is None:
            return None
        username = account.user.get_username()
    return authenticate(request, username=username, password=password)


@require_http_methods(["GET", "POST"])
def signin_link(request: HttpRequest) -> HttpResponse:
    """GET shows a button; only the POST spends the single-use token, so a mail scanner
    that follows links does not use the member's sign-in up."""
    token = request.POST.get("token") or request.GET.get(settings.SESAME_TOKEN_NAME, "")
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if request.method == "GET":
        return render(request, "portal/signin_link.html", {"token": token, "next": next_url})
    user = get_user(token) if token else None
    if user is None:
        return render(
            request,
            "portal/signin_link_invalid.html",
            {"link_form": SigninLinkForm(), "next": next_url},
            status=400,
        )
    return _signed_in(request, user, "sesame.backends.ModelBackend", next_url)


def _signed_in(request: HttpRequest, user: Any, backend: str, next_url: str) -> HttpResponse:
    """Sign in and go on, in the language the member chose in their profile."""
    login(request, user, backend=backend)
    response = HttpResponseRedirect(next_url)
    locale = PortalAccount.objects.filter(user=user).values_list("locale", flat=True).first()
    if locale:
        set_language_cookie(response, locale)
    return response


def set_language_cookie(response: HttpResponse, language: str) -> None:
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME, language, max_age=365 * 24 * 3600, samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE, httponly=True,
    )  # fmt: skip


@require_POST
def signout(request: HttpRequest) -> HttpResponse:
    logout(request)
    return HttpResponseRedirect("/signin")
