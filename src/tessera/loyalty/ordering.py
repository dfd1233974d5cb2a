"""Products and orders paid from the wallet."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from tessera.core.errors import Conflict, NotFound, ValidationFailed
from tessera.core.ids import new_id
from tessera.core.lookup import get_by_id
from tessera.core.metrics import counts_orders
from tessera.core.money import format_points
from tessera.crm.services import record_timeline
from tessera.ledger.services import InsufficientFunds, shared_accounts_last
from tessera.loyalty import alerts
from tessera.loyalty.errors import AlreadyRefunded, InsufficientBalance, SoldOut
from tessera.loyalty.lock_objects import lock_order, lock_stocked_products
from tessera.loyalty.models import Member, Order, OrderLine, Product, WalletTransaction
from tessera.loyalty.programs import get_member, get_program
from tessera.loyalty.wallet import move_points, restore_draws


@dataclass(frozen=True)
class ProductSpec:
    program_id: str
    name: str
    price_points: int
    description: str | None = None
    stock: int | None = None  # None: unlimited, and never locked
    active: bool = True


@dataclass(frozen=True)
class OrderLineSpec:
    product_id: str
    quantity: int


@dataclass(frozen=True)
class OrderResult:
    """An order, the wallet transaction that last moved its points (its payment, or its
    refund) and the wallet's balance right after that."""

    order: Order
    wallet_transaction: WalletTransaction
    balance_after: int


@transaction.atomic
def create_product(spec: ProductSpec) -> Product:
    program = get_program(spec.program_id)
    return Product.objects.create(
        program=program, name=spec.name, description=spec.description or "",
        price_points=spec.price_points, stock=spec.stock, active=spec.active,
    )  # fmt: skip


def get_product(product_id: str) -> Product:
    return get_by_id(Product, product_id, "product")


def get_order(order_id: str) -> Order:
    return get_by_id(
        Order.objects.select_related("member__wallet", "wallet_transaction", "refund_transaction"),
        order_id,
        "order",
    )


def _wanted(lines: Sequence[OrderLineSpec]) -> dict[str, int]:
    """Product id -> quantity, the lines of one product added up."""
    if not lines:
        raise ValidationFailed.field("lines", "an order needs at least one line")
    wanted: dict[str, int] = defaultdict(int)
    for i, line in enumerate(lines):
        if line.quantity < 1:
            raise ValidationFailed.field(f"lines.{i}.quantity", "must be at least 1")
        wanted[line.product_id] += line.quantity
    return dict(wanted)


@counts_orders
def place_order(member_id: str, lines: Sequence[OrderLineSpec]) -> OrderResult:
    """Pay an order from the wallet, all or nothing.

    In one transaction: take the stock of stocked products (a conditional decrement each,
    in primary-key order, before the wallet, so two orders never deadlock), debit the
    wallet through the ledger (which locks it and refuses a negative balance), write the
    order. Products without stock are only read: locking them would make every order of
    every member wait for the one before. If the wallet does not cover the order, nothing
    of that is kept: only the refusal record and the admin's email, and the caller gets
    402."""
    member = get_member(member_id)
    wanted = _wanted(lines)
    products = _products(member, wanted)
    outcome = _pay(member, wanted, products)
    if isinstance(outcome, InsufficientFunds):
        raise _refuse(member, wanted, outcome)
    return outcome


def _pay(
    member: Member, wanted: Mapping[str, int], products: Mapping[str, Product]
) -> OrderResult | InsufficientFunds:
    """The order, paid; or, with nothing of it kept, why the wallet refused it."""
    stocked = sorted(p for p in wanted if products[p].stock is not None)
    total = sum(products[p].price_points * q for p, q in wanted.items())
    try:
        # A savepoint (two round trips inside a request's transaction) only where stock is
        # taken before the wallet refuses; without stock, a refusal comes before anything
        # is written. The shared redemption account moves last, so its lock is held only
        # to the commit.
        with transaction.atomic(savepoint=bool(stocked)), shared_accounts_last():
            for product_id in stocked:
                _take_stock(products[product_id], wanted[product_id])
            order = Order(
                id=new_id("ord"), member=member, status=Order.Status.PLACED, total_points=total
            )
            try:
                wtx = move_points(
                    member,
                    type=WalletTransaction.Type.ORDER_PLACED,
                    points=-total,
                    reference=f"order:{order.pk}",
                    counter=member.program.redemption_account,
                    object_type="order",
                    object_id=order.pk,
                    detail={"lines": [{"product_id": p, "name": products[p].name, "quantity": q}
                                      for p, q in sorted(wanted.items())]},
                )  # fmt: skip
            except InsufficientFunds as exc:
                if stocked:
                    raise  # the savepoint gives the stock back
                return exc
            order.wallet_transaction = wtx
            order.save(force_insert=True)
            OrderLine.objects.bulk_create(
                OrderLine(order=order, product=products[p], quantity=q,
                          unit_points=products[p].price_points)
                for p, q in sorted(wanted.items())
            )  # fmt: skip
            record_timeline(
                member.contact, kind="order", obj=order,
                summary=f"Order {order.pk}: {format_points(total, settings.TESSERA_LOCALE)}",
                data={"status": order.status},
            )  # fmt: skip
            return OrderResult(order, wtx, wtx.balance_after)
    except InsufficientFunds as exc:
        return exc


def _products(member: Member, wanted: Mapping[str, int]) -> dict[str, Product]:
    """The ordered products, each checked to be of the member's program and on sale. Read
    without a lock: only stock needs one, and taking it locks the row."""
    products = {p.pk: p for p in Product.objects.filter(pk__in=wanted)}
    for product_id in wanted:
        product = products.get(product_id)
        if product is None or product.program_id != member.program_id:
            raise NotFound(
                f"No product {product_id} in this program",
                errors=[{"field": "lines", "message": f"unknown product {product_id}"}],
            )
        if not product.active:
            raise ValidationFailed.field("lines", f"{product.name} is not on sale")
    return products


def _take_stock(product: Product, quantity: int) -> None:
    """Decrement the stock if it covers ``quantity``, in one statement: the check and the
    change cannot be separated by a concurrent order (the row stays locked to the
    commit). 409 ``sold_out`` with what is left otherwise."""
    taken = Product.objects.filter(pk=product.pk, stock__gte=quantity).update(
        stock=F("stock") - quantity
    )
    if not taken:
        left = Product.objects.filter(pk=product.pk).values_list("stock", flat=True).get()
        raise SoldOut(
            f"{product.name}: {left} left, {quantity} wanted.",
            product_id=product.pk,
            available=left,
        )


@transaction.atomic
def _refuse(member: Member, wanted: dict[str, int], exc: InsufficientFunds) -> InsufficientBalance:
    """Record the refusal and email the admin (committed with the caller's transaction);
    returns the error for the caller to raise outside this block."""
    products = {p.pk: p for p in Product.objects.filter(pk__in=wanted)}
    total = sum(products[p].price_points * q for p, q in wanted.items() if p in products)
    balance = int(exc.extra.get("balance", 0))
    order = Order.objects.create(
        member=member, status=Order.Status.REFUSED, total_points=total, balance_at_refusal=balance
    )
    OrderLine.objects.bulk_create(
        OrderLine(
            order=order, product=products[p], quantity=q, unit_points=products[p].price_points
        )
        for p, q in sorted(wanted.items())
        if p in products
    )
    alerts.order_refused(member, order_id=order.pk, total=total, balance=balance)
    return InsufficientBalance(
        f"The wallet holds {format_points(balance, settings.TESSERA_LOCALE)}; this order "
        f"needs {format_points(total, settings.TESSERA_LOCALE)}.",
        balance=balance,
        required=total,
        order_id=order.pk,
    )


@transaction.atomic
def refund_order(order_id: str) -> OrderResult:
    """Return an order's points and stock, once. Re-locks the order and returns 409 if it
    was refunded meanwhile (pretix's confirm() pattern)."""
    order = lock_order(get_order(order_id).pk)
    if order.status == Order.Status.REFUNDED:
        raise AlreadyRefunded(f"Order {order.pk} was refunded at {order.refunded_at}.")
    if order.status != Order.Status.PLACED or order.wallet_transaction is None:
        raise Conflict(f"Order {order.pk} was {order.status}; there is nothing to refund.")
    lines = list(order.lines.all())
    stocked = lock_stocked_products(line.product_id for line in lines)
    member = order.member
    refund = move_points(
        member,
        type=WalletTransaction.Type.ORDER_REFUNDED,
        points=order.total_points,
        reference=f"order_refund:{order.pk}",
        counter=member.program.redemption_account,
        object_type="order",
        object_id=order.pk,
        detail={"order_id": order.pk},
        new_lot=False,
    )
    restore_draws(member, order.wallet_transaction, refund)
    stocked_ids = {p.pk for p in stocked}
    for line in lines:
        if line.product_id in stocked_ids:
            Product.objects.filter(pk=line.product_id).update(stock=F("stock") + line.quantity)
    order.status = Order.Status.REFUNDED
    order.refunded_at = timezone.now()
    order.refund_transaction = refund
    order.save(update_fields=["status", "refunded_at", "refund_transaction"])
    return OrderResult(order, refund, refund.balance_after)
