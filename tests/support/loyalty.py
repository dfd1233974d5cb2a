"""Builders shared by the loyalty tests."""

from __future__ import annotations

from typing import Any

from tessera.crm.inputs import ContactInput
from tessera.crm.services import create_contact
from tessera.loyalty.activities import ActivitySpec, create_activity
from tessera.loyalty.adjustments import adjust_points
from tessera.loyalty.models import Member, Product, Program
from tessera.loyalty.ordering import ProductSpec, create_product
from tessera.loyalty.programs import ProgramSpec, create_program, enroll_member


def program(**kw: Any) -> Program:
    data = {"name": "Club", "points_per_unit": 100, "currency": "USD", "low_balance_threshold": 50}
    return create_program(ProgramSpec(**{**data, **kw}))


def member(prog: Program, email: str = "ada@example.com", points: int = 0) -> Member:
    contact = create_contact(
        ContactInput(first_name=email.split("@")[0].title(), last_name="Member", email=email),
        check_duplicates=False,
    ).record
    m, _ = enroll_member(prog.pk, contact_id=contact.pk)
    if points:
        adjust_points(m.pk, points=points, reason="opening balance")
    m.wallet.refresh_from_db()
    return m


def product(prog: Program, price: int, stock: int | None = None, name: str = "Mug") -> Product:
    return create_product(
        ProductSpec(program_id=prog.pk, name=name, price_points=price, stock=stock)
    )


def question(prog: Program, points: int = 10, **kw: Any) -> Any:
    data = {"program_id": prog.pk, "kind": "question", "title": "Capital", "points": points,
            "question": "Capital of France?", "options": ["Paris", "Lyon"], "correct_option": "Paris"}  # fmt: skip
    return create_activity(ActivitySpec(**{**data, **kw}))


def balance(m: Member) -> int:
    m.wallet.refresh_from_db()
    return m.wallet.balance


def funded_member_and_product(
    points: int, price: int, stock: int | None = None, **program_kw: Any
) -> tuple[Member, Product]:
    """A member of a new program holding ``points``, and a product of it costing ``price``."""
    prog = program(**program_kw)
    return member(prog, points=points), product(prog, price, stock=stock)
