"""Low-balance and refused-order emails."""

from __future__ import annotations

from django.conf import settings

from tessera.loyalty.models import Member, Program
from tessera.notifications.services import queue_email


def admin_email(program: Program) -> str:
    return program.admin_email or settings.TESSERA_ADMIN_EMAIL


def after_movement(member: Member, *, before: int, after: int) -> None:
    """One email to the member and one to the admin each time the balance crosses from at
    or above the threshold to below it; staying below sends nothing more."""
    threshold = member.program.low_balance_threshold
    if not (before >= threshold > after):
        return
    contact = member.contact
    context = {
        "first_name": contact.first_name,
        "member_name": contact.full_name or contact.email,
        "member_id": member.pk,
        "program": member.program.name,
        "balance": after,
        "threshold": threshold,
    }
    if contact.email and not contact.email_opt_out:
        queue_email("low_balance_member", to=contact.email, context=context, contact=contact)
    queue_email("low_balance_admin", to=admin_email(member.program), context=context)


def order_refused(member: Member, *, order_id: str, total: int, balance: int) -> None:
    contact = member.contact
    queue_email(
        "order_refused_admin",
        to=admin_email(member.program),
        context={
            "member_name": contact.full_name or contact.email,
            "member_id": member.pk,
            "program": member.program.name,
            "order_id": order_id,
            "total": total,
            "balance": balance,
        },
    )
