"""Who is looking: the signed-in person's contact and membership, resolved once per page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, Concatenate, ParamSpec

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.views import redirect_to_login
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from tessera.crm.models import Contact
from tessera.loyalty.models import Member
from tessera.portal.models import PortalAccount

P = ParamSpec("P")


@dataclass(frozen=True)
class Viewer:
    """The person a member page is for. ``member`` is their first membership (a contact
    enrolled in no program still has events, tickets and a profile)."""

    user: Any
    contact: Contact
    member: Member | None

    @property
    def first_name(self) -> str:
        return self.contact.first_name or self.contact.email


def contact_for_email(email: str) -> Contact | None:
    """The contact a sign-in for ``email`` is for: one already signing in, else one enrolled
    in a program, else the one most recently active. Case does not matter in an address."""
    address = email.strip()
    if not address:
        return None
    contacts = list(
        Contact.objects.filter(email__iexact=address).order_by("-last_activity_at", "id")[:20]
    )
    if not contacts:
        return None
    ids = [c.pk for c in contacts]
    signing_in = set(
        PortalAccount.objects.filter(contact_id__in=ids).values_list("contact_id", flat=True)
    )
    members = set(Member.objects.filter(contact_id__in=ids).values_list("contact_id", flat=True))
    return sorted(contacts, key=lambda c: (c.pk not in signing_in, c.pk not in members))[0]


def user_for_contact(contact: Contact) -> AbstractBaseUser:
    """The sign-in of ``contact``, created on first use (with no usable password)."""
    account = PortalAccount.objects.select_related("user").filter(contact=contact).first()
    if account is not None:
        return account.user
    users = get_user_model()
    try:
        with transaction.atomic():
            user = users.objects.create_user(username=f"member:{contact.pk}", email=contact.email)
            user.set_unusable_password()
            user.save(update_fields=["password"])
            PortalAccount.objects.create(user=user, contact=contact)
            return user
    except IntegrityError:  # a second request made it first
        return PortalAccount.objects.select_related("user").get(contact=contact).user


def viewer_for(user: Any) -> Viewer | None:
    account = (
        PortalAccount.objects.select_related("contact").filter(user_id=user.pk).first()
        if user.is_authenticated
        else None
    )
    if account is None:
        return None
    member = (
        Member.objects.select_related("program", "wallet")
        .filter(contact_id=account.contact_id)
        .order_by("created_at", "id")
        .first()
    )
    return Viewer(user=user, contact=account.contact, member=member)


def member_page(
    view: Callable[Concatenate[HttpRequest, Viewer, P], HttpResponse],
) -> Callable[Concatenate[HttpRequest, P], HttpResponse]:
    """A page for a signed-in member: signed out, to /signin and back after; a staff
    account with no contact gets a page that says so."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        viewer = viewer_for(request.user)
        if viewer is None:
            return render(request, "portal/no_member.html", status=403)
        return view(request, viewer, *args, **kwargs)

    return wrapper


def program_member(viewer: Viewer) -> Member:
    """Pages that only make sense inside a loyalty program answer 404 without one."""
    if viewer.member is None:
        raise Http404("not a member of a program")
    return viewer.member


def staff_page(
    view: Callable[Concatenate[HttpRequest, P], HttpResponse],
) -> Callable[Concatenate[HttpRequest, P], HttpResponse]:
    """A staff page: signed out, to /signin; signed in without staff status, 404 (the
    page's existence is not a member's business)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise Http404("not a staff page")
        return view(request, *args, **kwargs)

    return wrapper
