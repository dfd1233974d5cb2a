from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tessera.crm.models import Contact, TimelineEntry
from tessera.ledger.services import verify
from tessera.loyalty.adjustments import adjust_points, expire_points
from tessera.loyalty.models import (
    Completion,
    Member,
    Order,
    PointLot,
    Product,
    WalletTransaction,
)
from tessera.loyalty.ordering import OrderLineSpec, place_order, refund_order
from tessera.notifications.models import OutboundEmail
from tests.support.api import Api, assert_problem
from tests.support.loyalty import (
    balance,
    funded_member_and_product,
    member,
    product,
    program,
    question,
)

pytestmark = pytest.mark.django_db


def j(r):  # type: ignore[no-untyped-def]
    return json.loads(r.content)


@pytest.fixture
def existing_ada(db: None) -> Contact:
    """Ada, already a contact (and findable by matching) before she enrols."""
    from tessera.crm.matching.engine import index_record

    ada = Contact.objects.create(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    index_record("contact", ada)
    return ada


@pytest.fixture
def club(admin_api: Api) -> dict[str, Any]:
    """A program created over the API, as its answer."""
    return j(admin_api.post("/programs", {"name": "Club", "points_per_unit": 100, "currency": "USD",
                                          "low_balance_threshold": 50}))  # fmt: skip


def enrol_ada_by_her_details(api: Api, program_id: str) -> Any:
    return api.post(
        "/members",
        {
            "program_id": program_id,
            "contact": {"first_name": "Ada", "last_name": "Lovelace", "email": "ADA@example.com"},
        },
    )


def test_a_program_created_over_the_api_keeps_its_currency(club: dict[str, Any]) -> None:
    assert club["currency"] == "USD"
    assert club["id"].startswith("prg_")


@pytest.mark.parametrize("bad", ["XYZ", "PTS", "DEM"])
def test_a_program_needs_a_current_real_currency(admin_api: Api, bad: str) -> None:
    assert_problem(
        admin_api.post("/programs", {"name": "x", "points_per_unit": 1, "currency": bad}),
        422,
        "validation_error",
    )


def test_enrolling_by_contact_details_matches_the_existing_contact(
    api: Api, existing_ada: Contact, club: dict[str, Any]
) -> None:
    r = enrol_ada_by_her_details(api, club["id"])
    assert r.status_code == 201, r.content
    assert j(r)["contact_id"] == existing_ada.pk  # matched, not duplicated
    assert Contact.objects.count() == 1


def test_a_new_member_has_an_empty_points_wallet(
    api: Api, existing_ada: Contact, club: dict[str, Any]
) -> None:
    mem = j(enrol_ada_by_her_details(api, club["id"]))
    assert mem["wallet"] == {"balance": 0, "currency": "PTS", "low_balance_threshold": 50}
    assert j(api.get(f"/members/{mem['id']}/wallet"))["balance"] == 0


def test_enrolling_a_member_again_answers_the_same_membership(
    api: Api, existing_ada: Contact, club: dict[str, Any]
) -> None:
    mem = j(enrol_ada_by_her_details(api, club["id"]))
    again = api.post("/members", {"program_id": club["id"], "contact_id": existing_ada.pk})
    assert again.status_code == 200
    assert j(again)["id"] == mem["id"]


def test_enrolling_needs_a_contact(api: Api, club: dict[str, Any]) -> None:
    assert_problem(api.post("/members", {"program_id": club["id"]}), 422, "validation_error")


def test_enrolling_in_an_unknown_program_is_not_found(api: Api, existing_ada: Contact) -> None:
    assert_problem(
        api.post("/members", {"program_id": "prg_nope", "contact_id": existing_ada.pk}),
        404,
        "not_found",
    )


def test_earning_from_a_question_once(api: Api) -> None:
    prog = program()
    m = member(prog)
    act = question(prog, points=25)
    r = api.post(f"/members/{m.pk}/activities/{act.pk}/completions", {"answer": " paris "})
    body = j(r)
    assert r.status_code == 201
    assert body["points_earned"] == 25
    assert body["balance_after"] == 25
    assert body["wallet_transaction"]["type"] == "points_earned"
    again = api.post(f"/members/{m.pk}/activities/{act.pk}/completions", {"answer": "Paris"})
    assert_problem(again, 409, "already_completed")
    assert balance(m) == 25
    assert Completion.objects.count() == 1


def test_wrong_answer_is_recorded_and_earns_nothing(api: Api) -> None:
    prog = program()
    m = member(prog)
    act = question(prog)
    body = j(api.post(f"/members/{m.pk}/activities/{act.pk}/completions", {"answer": "Lyon"}))
    assert body["correct"] is False
    assert body["points_earned"] == 0
    assert body["wallet_transaction"] is None
    assert balance(m) == 0
    assert WalletTransaction.objects.count() == 0
    assert Completion.objects.get().correct is False


def vote_in(admin_api: Api, prog: Any) -> dict[str, Any]:
    return j(admin_api.post("/activities", {"program_id": prog.pk, "kind": "vote", "title": "Venue",
                                            "points": 5, "question": "Where?", "options": ["A", "B"]}))  # fmt: skip


def video_in(admin_api: Api, prog: Any) -> dict[str, Any]:
    return j(admin_api.post("/activities", {"program_id": prog.pk, "kind": "video", "title": "Intro",
                                             "points": 7, "video_url": "https://v.example/1",
                                             "min_watch_seconds": 60}))  # fmt: skip


def test_a_vote_for_an_option_not_offered_is_refused(api: Api, admin_api: Api) -> None:
    prog = program()
    m = member(prog)
    vote = vote_in(admin_api, prog)
    assert_problem(
        api.post(f"/members/{m.pk}/activities/{vote['id']}/completions", {"option": "C"}),
        422,
        "validation_error",
    )
    assert balance(m) == 0


def test_a_vote_earns_its_points(api: Api, admin_api: Api) -> None:
    prog = program()
    m = member(prog)
    vote = vote_in(admin_api, prog)
    r = api.post(f"/members/{m.pk}/activities/{vote['id']}/completions", {"option": "B"})
    assert j(r)["points_earned"] == 5
    assert balance(m) == 5


def test_a_video_watched_too_briefly_earns_nothing_yet(api: Api, admin_api: Api) -> None:
    prog = program()
    m = member(prog)
    video = video_in(admin_api, prog)
    short = api.post(
        f"/members/{m.pk}/activities/{video['id']}/completions", {"watched_seconds": 30}
    )
    assert_problem(short, 422, "validation_error")
    assert Completion.objects.filter(activity_id=video["id"]).count() == 0  # may still earn later
    assert balance(m) == 0


def test_a_video_watched_long_enough_earns_its_points(api: Api, admin_api: Api) -> None:
    prog = program()
    m = member(prog)
    video = video_in(admin_api, prog)
    # A short watch first: refused, it does not use up the activity.
    api.post(f"/members/{m.pk}/activities/{video['id']}/completions", {"watched_seconds": 30})
    r = api.post(f"/members/{m.pk}/activities/{video['id']}/completions", {"watched_seconds": 61})
    assert j(r)["points_earned"] == 7
    assert balance(m) == 7


def test_closed_activity(api: Api) -> None:
    prog = program()
    m = member(prog)
    act = question(prog, ends_at=timezone.now() - timedelta(days=1))
    assert_problem(
        api.post(f"/members/{m.pk}/activities/{act.pk}/completions", {"answer": "Paris"}),
        409,
        "activity_closed",
    )
    assert Completion.objects.count() == 0


@pytest.fixture
def two_mugs_ordered(api: Api) -> tuple[Member, Product, Any]:
    """A member with 1,000 points orders two 300-point mugs of five in stock: the member,
    the mug and the answer."""
    m, mug = funded_member_and_product(points=1000, price=300, stock=5)
    r = api.post(f"/members/{m.pk}/orders", {"lines": [{"product_id": mug.pk, "quantity": 2}]})
    return m, mug, r


def test_an_order_is_paid_from_the_wallet(two_mugs_ordered: tuple[Member, Product, Any]) -> None:
    _, _, r = two_mugs_ordered
    assert r.status_code == 201, r.content
    body = j(r)
    assert body["status"] == "placed"
    assert body["total_points"] == 600
    assert body["balance_after"] == 400


def test_an_order_answers_its_wallet_transaction(
    two_mugs_ordered: tuple[Member, Product, Any],
) -> None:
    wtx = j(two_mugs_ordered[2])["wallet_transaction"]
    assert wtx["type"] == "order_placed"
    assert wtx["label"] == "Order Placed by Members"
    assert wtx["points"] == -600


def test_an_order_takes_its_products_from_stock(
    two_mugs_ordered: tuple[Member, Product, Any],
) -> None:
    _, mug, _ = two_mugs_ordered
    mug.refresh_from_db()
    assert mug.stock == 3


def test_an_order_is_in_the_wallet_history(
    api: Api, two_mugs_ordered: tuple[Member, Product, Any]
) -> None:
    m, _, _ = two_mugs_ordered
    items = j(api.get(f"/members/{m.pk}/wallet/transactions"))["items"]
    assert [(i["type"], i["points"], i["balance_after"]) for i in items] == [
        ("order_placed", -600, 400),
        ("adjustment", 1000, 1000),
    ]


def test_an_order_is_on_the_contacts_timeline(
    two_mugs_ordered: tuple[Member, Product, Any],
) -> None:
    m, _, _ = two_mugs_ordered
    assert TimelineEntry.objects.filter(contact=m.contact, kind="order").count() == 1


def test_an_order_keeps_the_ledger_balanced(two_mugs_ordered: tuple[Member, Product, Any]) -> None:
    assert verify().ok


def test_the_largest_values_the_api_accepts_fit_the_database(api: Api, admin_api: Api) -> None:
    """Every bound in the schema is one the columns can hold (PostgreSQL's integer is 32
    bits): a 10^12-point threshold, and a refused order of 10 x 10^9 points."""
    r = admin_api.post("/programs", {"name": "Big", "points_per_unit": 1, "currency": "USD",
                                     "low_balance_threshold": 10**12})  # fmt: skip
    assert r.status_code == 201, r.content
    prog = program()
    m = member(prog, points=5)
    gem = product(prog, 10**9)
    lines = [{"product_id": gem.pk, "quantity": 10}]
    body = assert_problem(
        api.post(f"/members/{m.pk}/orders", {"lines": lines}), 402, "insufficient_balance"
    )
    assert body["required"] == 10**10
    assert Order.objects.get(pk=body["order_id"]).total_points == 10**10


def test_refused_order_changes_nothing_but_emails_the_admin(api: Api) -> None:
    prog = program(low_balance_threshold=0)
    m = member(prog, points=100)
    mug = product(prog, 300, stock=5)
    emails_before = OutboundEmail.objects.count()
    r = api.post(f"/members/{m.pk}/orders", {"lines": [{"product_id": mug.pk, "quantity": 1}]})
    body = assert_problem(r, 402, "insufficient_balance")
    assert body["balance"] == 100
    assert body["required"] == 300
    assert balance(m) == 100
    mug.refresh_from_db()
    assert mug.stock == 5
    assert WalletTransaction.objects.filter(type="order_placed").count() == 0
    refused = Order.objects.get()
    assert refused.status == "refused"
    assert refused.pk == body["order_id"]
    admin_mail = OutboundEmail.objects.exclude(pk__in=[]).order_by("created_at")[emails_before:]
    assert [(e.template, e.to) for e in admin_mail] == [
        ("order_refused_admin", "admin@tessera.test")
    ]
    assert verify().ok


def test_sold_out_writes_nothing(api: Api) -> None:
    prog = program()
    m = member(prog, points=1000)
    mug = product(prog, 10, stock=1)
    before = (
        WalletTransaction.objects.count(),
        Order.objects.count(),
        OutboundEmail.objects.count(),
    )
    body = assert_problem(
        api.post(f"/members/{m.pk}/orders", {"lines": [{"product_id": mug.pk, "quantity": 2}]}),
        409,
        "sold_out",
    )
    assert body["available"] == 1
    assert (
        WalletTransaction.objects.count(),
        Order.objects.count(),
        OutboundEmail.objects.count(),
    ) == before
    assert balance(m) == 1000


def test_sold_out_second_line_gives_the_first_lines_stock_back(api: Api) -> None:
    prog = program()
    m = member(prog, points=1000)
    # Stock is taken in primary-key order: the first product's is taken, then the second
    # runs out.
    mug, cap = sorted([product(prog, 10, stock=4), product(prog, 10, stock=4)], key=lambda p: p.pk)
    Product.objects.filter(pk=cap.pk).update(stock=1)
    lines = [{"product_id": mug.pk, "quantity": 2}, {"product_id": cap.pk, "quantity": 2}]
    body = assert_problem(api.post(f"/members/{m.pk}/orders", {"lines": lines}), 409, "sold_out")
    assert body["product_id"] == cap.pk
    assert body["available"] == 1
    mug.refresh_from_db()
    cap.refresh_from_db()
    assert (mug.stock, cap.stock) == (4, 1)  # the mugs taken first were given back
    assert balance(m) == 1000
    assert not Order.objects.exists()


def test_refund_returns_points_and_stock_once(api: Api) -> None:
    prog = program()
    m = member(prog, points=500)
    mug = product(prog, 200, stock=3)
    order = place_order(m.pk, [OrderLineSpec(mug.pk, 2)]).order
    r = api.post(f"/orders/{order.pk}/refund", {})
    assert r.status_code == 200
    body = j(r)
    assert body["status"] == "refunded"
    assert body["refund_transaction"]["type"] == "order_refunded"
    assert body["balance_after"] == 500
    mug.refresh_from_db()
    assert mug.stock == 3
    assert_problem(api.post(f"/orders/{order.pk}/refund", {}), 409, "already_refunded")
    assert balance(m) == 500
    assert sum(PointLot.objects.filter(member=m).values_list("remaining", flat=True)) == 500
    assert verify().ok


def test_adjustments_need_admin(api: Api) -> None:
    m = member(program(), points=100)
    assert_problem(
        api.post(f"/members/{m.pk}/adjustments", {"points": 5, "reason": "x"}), 403, "forbidden"
    )
    assert balance(m) == 100


def test_an_adjustment_never_takes_the_balance_below_zero(admin_api: Api) -> None:
    m = member(program(), points=100)
    assert_problem(
        admin_api.post(f"/members/{m.pk}/adjustments", {"points": -101, "reason": "x"}),
        402,
        "insufficient_balance",
    )
    assert balance(m) == 100


def test_an_adjustment_needs_a_reason(admin_api: Api) -> None:
    m = member(program(), points=100)
    assert_problem(
        admin_api.post(f"/members/{m.pk}/adjustments", {"points": 5, "reason": "  "}),
        422,
        "validation_error",
    )
    assert balance(m) == 100


def test_an_admin_adjustment_moves_the_balance(admin_api: Api) -> None:
    m = member(program(), points=100)
    r = admin_api.post(
        f"/members/{m.pk}/adjustments", {"points": -40, "reason": "goodwill reversal"}
    )
    assert r.status_code == 201
    assert j(r)["type"] == "adjustment"
    assert j(r)["balance_after"] == 60
    assert balance(m) == 60


def test_low_balance_alert_once_per_crossing() -> None:
    prog = program(low_balance_threshold=100)
    m = member(prog, points=150)
    mug = product(prog, 30)

    def alerts() -> list[str]:
        return list(
            OutboundEmail.objects.filter(template__startswith="low_balance")
            .order_by("created_at")
            .values_list("template", flat=True)
        )

    place_order(m.pk, [OrderLineSpec(mug.pk, 1)])  # 120: still above
    assert alerts() == []
    place_order(m.pk, [OrderLineSpec(mug.pk, 1)])  # 90: crossed
    assert alerts() == ["low_balance_member", "low_balance_admin"]
    place_order(m.pk, [OrderLineSpec(mug.pk, 1)])  # 60: still below, no repeat
    assert len(alerts()) == 2
    adjust_points(m.pk, points=100, reason="top up")  # 160: back above
    place_order(m.pk, [OrderLineSpec(mug.pk, 3)])  # 70: crossed again
    assert len(alerts()) == 4
    member_mail = OutboundEmail.objects.filter(template="low_balance_member").first()
    assert member_mail is not None
    assert member_mail.to == m.contact.email
    assert (
        "70 points" in OutboundEmail.objects.filter(template="low_balance_member").last().text_body
    )  # type: ignore[union-attr]


def test_points_expire_first_in_first_out() -> None:
    prog = program(points_expire_after_days=30, low_balance_threshold=0)
    m = member(prog)
    old = question(prog, points=100, title="old")
    new = question(prog, points=50, title="new")
    from tessera.loyalty.activities import complete_activity

    complete_activity(m.pk, old.pk, answer="Paris")
    complete_activity(m.pk, new.pk, answer="Paris")
    PointLot.objects.filter(source__detail__activity="old").update(
        expires_at=timezone.now() - timedelta(days=1)
    )
    mug = product(prog, 60)
    place_order(m.pk, [OrderLineSpec(mug.pk, 1)])  # takes 60 from the OLD lot first
    assert expire_points() == 40
    assert balance(m) == 50
    expired = WalletTransaction.objects.get(type="points_expired")
    assert expired.points == -40
    assert expired.balance_after == 50
    assert expire_points() == 0  # idempotent
    assert verify().ok


def test_points_refunded_into_an_expired_lot_expire_too() -> None:
    """An order drew from a lot that has since expired; refunding the order puts those
    points back into that lot, and the next expiry run takes them (once)."""
    prog = program(points_expire_after_days=30, low_balance_threshold=0)
    m = member(prog)
    earned = question(prog, points=100, title="earned")
    from tessera.loyalty.activities import complete_activity

    complete_activity(m.pk, earned.pk, answer="Paris")
    order = place_order(m.pk, [OrderLineSpec(product(prog, 30).pk, 1)]).order
    PointLot.objects.update(expires_at=timezone.now() - timedelta(days=1))
    assert expire_points() == 70
    assert balance(m) == 0
    refund_order(order.pk)
    assert balance(m) == 30
    assert PointLot.objects.get().remaining == 30
    assert expire_points() == 30
    assert balance(m) == 0
    assert PointLot.objects.get().remaining == 0
    assert expire_points() == 0
    assert list(
        WalletTransaction.objects.filter(type="points_expired").values_list("points", flat=True)
    ) == [-70, -30]
    assert verify().ok


def test_member_timeline_shows_wallet_activity() -> None:
    prog = program()
    m = member(prog, points=10)
    kinds = set(TimelineEntry.objects.filter(contact=m.contact).values_list("kind", flat=True))
    assert {"member_enrolled", "wallet_transaction"} <= kinds


def test_unknown_product_in_order(api: Api) -> None:
    prog = program()
    m = member(prog, points=10)
    other = product(program(name="Other"), 1)
    assert_problem(
        api.post(f"/members/{m.pk}/orders", {"lines": [{"product_id": other.pk, "quantity": 1}]}),
        404,
        "not_found",
    )
    assert_problem(api.post(f"/members/{m.pk}/orders", {"lines": []}), 422, "validation_error")
    assert Product.objects.count() == 1
    assert balance(m) == 10
