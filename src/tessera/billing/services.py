"""Taking card payments without ever holding a database transaction across a Stripe call
(rule 4): record and commit, call Stripe with a key derived from our id, then record the
outcome and settle in a second transaction."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError
from django.db import transaction as db
from django.utils import timezone

from tessera.billing.gateways.base import (
    CardDetails,
    CardRejected,
    GatewayRejected,
    GatewayUnavailable,
    PaymentMethodUnusable,
    PaymentResult,
)
from tessera.billing.gateways.stripe import get_gateway
from tessera.billing.lock_objects import lock_transaction
from tessera.billing.models import PaymentMethod, StripeCustomer, Transaction
from tessera.billing.settlement import settle
from tessera.core.errors import Conflict, ProblemError, ValidationFailed
from tessera.core.lookup import get_by_id
from tessera.core.money import Money
from tessera.crm.models import Contact
from tessera.crm.services import record_timeline
from tessera.ledger.models import LedgerAccount
from tessera.ledger.services import Leg, get_or_create_account, post

S = Transaction.Status
# Forward-only: an older event never moves a transaction back. A failed attempt is not
# final at Stripe (the PaymentIntent returns to `requires_payment_method` and the customer
# may retry, e.g. after 3-D Secure), so a later authorisation or capture still wins over
# it; captured and canceled are final and equal, neither overwrites the other.
RANK = {S.PENDING: 0, S.FAILED: 1, S.AUTHORIZED: 2, S.CAPTURED: 3, S.CANCELED: 3}
# failure_code of a transaction the reconciler canceled because Stripe had no payment for
# it (rather than because Stripe said so).
NOT_FOUND_AT_STRIPE = "not_found_at_stripe"
GATEWAY_STATUS = {
    "succeeded": S.CAPTURED,
    "requires_capture": S.AUTHORIZED,
    "failed": S.FAILED,
    "canceled": S.CANCELED,
}


class PaymentDeclined(ProblemError):
    status = 402
    code = "payment_declined"
    title = "The card was declined"


INVALID_PAYMENT_METHOD = "invalid_payment_method"


class InvalidPaymentMethod(ValidationFailed):
    """422 for a payment method id Stripe does not know (or will not let this customer
    use): the request is wrong, nothing was declined."""

    @classmethod
    def for_transaction(cls, txn: Transaction, reason: str) -> InvalidPaymentMethod:
        message = "is not a payment method that can be charged"
        return cls(
            f"payment_method_id: {message} ({reason})"
            if reason
            else f"payment_method_id: {message}",
            errors=[{"field": "payment_method_id", "message": message}],
            transaction_id=txn.pk,
        )


class PaymentRejected(ProblemError):
    """Stripe refused the payment request itself (not the card): an amount below its
    minimum, say. The same request would be refused again."""

    status = 422
    code = "payment_rejected"
    title = "The payment provider refused the request"


class PaymentUnavailable(ProblemError):
    status = 502
    code = "payment_gateway_unavailable"
    title = "The payment provider could not be reached"
    replay_on_retry = True

    @classmethod
    def pending(cls, txn: Transaction) -> PaymentUnavailable:
        """For a payment left pending: the reconciler settles it when Stripe answers."""
        return cls(
            "Stripe could not be reached; the payment will be settled when it answers.",
            transaction_id=txn.pk,
        )


def get_transaction(txn_id: str) -> Transaction:
    """The payment; NotFound (404) for an unknown id."""
    return get_by_id(Transaction, txn_id, "transaction")


@dataclass(frozen=True, slots=True)
class PaymentUpdate:
    """A payment after a gateway answer was applied to it, and whether its status moved."""

    transaction: Transaction
    changed: bool


def record_result(txn_id: str, result: PaymentResult) -> PaymentUpdate:
    """Apply a gateway answer to the payment in a database transaction of its own, under
    its row lock (``apply_result``)."""
    with db.atomic():
        locked = lock_transaction(txn_id)
        changed = apply_result(locked, result)
    return PaymentUpdate(locked, changed)


def _customer(contact: Contact) -> str:
    existing = StripeCustomer.objects.filter(contact=contact).first()
    if existing:
        return existing.stripe_id
    stripe_id = get_gateway().ensure_customer(
        email=contact.email, name=contact.full_name, idempotency_key=f"customer:{contact.pk}"
    )
    StripeCustomer.objects.get_or_create(contact=contact, defaults={"stripe_id": stripe_id})
    return stripe_id


def _save_card(contact: Contact, card: CardDetails) -> PaymentMethod:
    method, created = PaymentMethod.objects.get_or_create(
        stripe_id=card.payment_method_id,
        defaults={
            "contact": contact,
            "brand": card.brand,
            "last4": card.last4,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "holder_name": card.holder_name,
            "billing_line1": card.billing.get("line1", ""),
            "billing_city": card.billing.get("city", ""),
            "billing_postal_code": card.billing.get("postal_code", ""),
            "billing_country": card.billing.get("country", "")[:2],
        },
    )  # fmt: skip
    if created:
        record_timeline(contact, kind="payment_method", obj=method,
                        summary=f"Card saved: {method.brand} •••• {method.last4}")  # fmt: skip
    return method


def apply_result(txn: Transaction, result: PaymentResult) -> bool:
    """Move a (locked) transaction forward to what the gateway says; settle on capture or
    failure. Returns whether anything changed. Idempotent and order-proof."""
    new = GATEWAY_STATUS.get(result.status)
    if result.payment_intent_id and not txn.stripe_payment_intent_id:
        txn.stripe_payment_intent_id = result.payment_intent_id
    # A cancel we only inferred (Stripe showed no payment) yields to Stripe saying it took
    # the money after all: its search can lag behind its payments.
    overrides_inferred = (
        txn.status == S.CANCELED
        and txn.failure_code == NOT_FOUND_AT_STRIPE
        and new in (S.AUTHORIZED, S.CAPTURED)
    )
    if new is None or (RANK[S(new)] <= RANK[S(txn.status)] and not overrides_inferred):
        txn.save(update_fields=["stripe_payment_intent_id", "updated_at"])
        return False
    txn.status = new
    if new in (S.FAILED, S.CANCELED):
        txn.failure_code = result.failure_code[:100]
        txn.failure_message = result.failure_message[:500]
    elif overrides_inferred:
        txn.failure_code = txn.failure_message = ""
    if new in (S.CAPTURED, S.FAILED, S.CANCELED):
        txn.settled_at = timezone.now()
    txn.save()
    if new == S.CAPTURED:
        _book_capture(txn)
    settle(txn)
    return True


def cash_accounts(txn: Transaction) -> tuple[LedgerAccount, LedgerAccount]:
    """Stripe's clearing account and the purpose's account, in the payment's currency."""
    clearing = get_or_create_account(
        f"stripe:clearing:{txn.currency}",
        name=f"Stripe clearing {txn.currency}",
        asset=txn.currency,
    )
    purpose = get_or_create_account(
        f"purpose:{txn.purpose}:{txn.currency}",
        name=f"{txn.purpose} {txn.currency}",
        asset=txn.currency,
        allow_negative=True,
    )
    return clearing, purpose


def book_cash(
    txn: Transaction,
    amount: int,
    *,
    kind: str,
    reference: str,
    object_type: str,
    object_id: str,
    memo: str = "",
) -> None:
    """Money into Stripe's clearing account from the payment's purpose (``amount`` > 0:
    a capture, a reversed refund) or back out to it (< 0: a refund)."""
    clearing, purpose = cash_accounts(txn)
    post(
        kind=kind,
        reference=reference,
        legs=[Leg(clearing, amount), Leg(purpose, -amount)],
        object_type=object_type,
        object_id=object_id,
        memo=memo,
    )


def _book_capture(txn: Transaction) -> None:
    book_cash(txn, txn.amount, kind="payment_captured", reference=f"capture:{txn.pk}",
              object_type="transaction", object_id=txn.pk)  # fmt: skip
    amount = Money(txn.amount, txn.currency).format(settings.TESSERA_LOCALE)
    record_timeline(txn.contact, kind="transaction", obj=txn, summary=f"Payment captured: {amount}")


def charge_card(
    *,
    contact: Contact,
    amount: int,
    currency: str,
    payment_method_id: str,
    purpose: str,
    purpose_id: str,
    capture: bool = True,
    request_key: str | None = None,
) -> tuple[Transaction, PaymentResult | None]:
    """Charge a card through the gateway in three steps (see the module doc).

    Must be called outside a database transaction. Raises ``PaymentDeclined`` (402) on a
    decline and ``PaymentUnavailable`` (502) when Stripe cannot be reached; in that case the
    transaction stays pending for ``tessera reconcile``.

    ``request_key`` names the client's request (its Idempotency-Key): a retry of a request
    that crashed after Stripe charged resumes the same transaction, so it asks Stripe what
    happened instead of charging again."""
    txn = Transaction.objects.filter(request_key=request_key).first() if request_key else None
    resumed = txn is not None
    if txn is None:
        try:
            with db.atomic():
                txn = Transaction.objects.create(
                    contact=contact, amount=amount, currency=currency, purpose=purpose,
                    purpose_id=purpose_id, capture_method="automatic" if capture else "manual",
                    request_key=request_key,
                )  # fmt: skip
        except IntegrityError:
            # The same request, running at the same time (its key was taken over):
            # theirs is the payment.
            txn, resumed = Transaction.objects.get(request_key=request_key), True
    if resumed:
        return _resume(txn, contact, payment_method_id, capture)
    return _attempt(txn, contact, payment_method_id, capture)


def _resume(
    txn: Transaction, contact: Contact, payment_method_id: str, capture: bool
) -> tuple[Transaction, PaymentResult | None]:
    """The same request again: answer with what the first attempt achieved, asking Stripe
    when that is not recorded yet; charge only if Stripe never saw the first attempt."""
    if txn.status == S.FAILED and txn.failure_code == INVALID_PAYMENT_METHOD:
        raise InvalidPaymentMethod.for_transaction(txn, txn.failure_message)
    if txn.status == S.FAILED:
        raise PaymentDeclined(
            f"The card was declined ({txn.failure_code or 'no reason given'}).",
            decline_code=txn.failure_code,
            transaction_id=txn.pk,
        )
    if txn.status == S.CANCELED:
        raise Conflict(f"Payment {txn.pk} was canceled.", transaction_id=txn.pk)
    if txn.status != S.PENDING:
        return txn, None
    gateway = get_gateway()
    try:
        if txn.stripe_payment_intent_id:
            found: PaymentResult | None = gateway.retrieve(txn.stripe_payment_intent_id)
        else:
            found = gateway.find_by_transaction(txn.pk)
    except GatewayUnavailable as exc:
        raise PaymentUnavailable.pending(txn) from exc
    if found is None:
        # Stripe has no payment of ours (the same idempotency key would return it if it
        # had one): this is the first attempt that reaches it.
        return _attempt(txn, contact, payment_method_id, capture)
    return _record(txn, contact, None, found)


def _attempt(
    txn: Transaction, contact: Contact, payment_method_id: str, capture: bool
) -> tuple[Transaction, PaymentResult | None]:
    gateway = get_gateway()
    try:
        customer_id = _customer(contact)
        card = gateway.attach_card(payment_method_id, customer_id)
        result = gateway.create_payment(
            amount=txn.amount, currency=txn.currency, customer_id=customer_id,
            payment_method_id=payment_method_id, capture=capture,
            idempotency_key=f"txn:{txn.pk}:create", metadata={"tessera_transaction": txn.pk},
        )  # fmt: skip
    except GatewayUnavailable as exc:
        raise PaymentUnavailable.pending(txn) from exc
    except PaymentMethodUnusable as exc:
        _fail(txn, INVALID_PAYMENT_METHOD, str(exc))
        raise InvalidPaymentMethod.for_transaction(txn, str(exc)) from exc
    except CardRejected as exc:
        _fail(txn, exc.code, exc.message)
        raise PaymentDeclined(
            f"The card was declined ({exc.code}).", decline_code=exc.code, transaction_id=txn.pk
        ) from exc
    except GatewayRejected as exc:
        _fail(txn, "invalid_request", str(exc))
        raise PaymentRejected(f"Stripe refused the payment: {exc}", transaction_id=txn.pk) from exc
    return _record(txn, contact, card, result)


def _fail(txn: Transaction, code: str, message: str) -> None:
    record_result(txn.pk, PaymentResult("failed", None, txn.amount, None, code, message))


def _record(
    txn: Transaction, contact: Contact, card: CardDetails | None, result: PaymentResult
) -> tuple[Transaction, PaymentResult | None]:
    """The second transaction of the saga: the card and Stripe's answer, settled."""
    with db.atomic():
        locked = lock_transaction(txn.pk)
        if card is not None:
            locked.payment_method = _save_card(contact, card)
        apply_result(locked, result)
    if locked.status == S.FAILED:
        raise PaymentDeclined(
            f"The card was declined ({locked.failure_code or 'no reason given'}).",
            decline_code=locked.failure_code,
            transaction_id=locked.pk,
        )
    return locked, result


def settle_from_gateway(txn_id: str) -> Transaction:
    """Ask the gateway what happened to a transaction and apply it (the reconciler)."""
    txn = Transaction.objects.get(pk=txn_id)
    if not txn.stripe_payment_intent_id:
        return txn
    result = get_gateway().retrieve(txn.stripe_payment_intent_id)
    return record_result(txn.pk, result).transaction


def capture_transaction(txn_id: str) -> Transaction:
    """Capture an authorised payment (capture later); NotFound for an unknown id.
    Idempotent: Stripe gets the same key and an already captured transaction is returned
    as it is."""
    return _finish_authorised(txn_id, "capture")


def cancel_transaction(txn_id: str) -> Transaction:
    """Release an authorisation that will not be captured; NotFound for an unknown id."""
    return _finish_authorised(txn_id, "cancel")


def _finish_authorised(txn_id: str, action: str) -> Transaction:
    txn = get_transaction(txn_id)
    done = S.CAPTURED if action == "capture" else S.CANCELED
    if txn.status == done:
        return txn
    if txn.status != S.AUTHORIZED or not txn.stripe_payment_intent_id:
        raise Conflict(
            f"Transaction {txn.pk} is {txn.status}; only authorised payments can {action}."
        )
    gateway = get_gateway()
    call = gateway.capture if action == "capture" else gateway.cancel
    try:
        result = call(txn.stripe_payment_intent_id, idempotency_key=f"txn:{txn.pk}:{action}")
    except GatewayUnavailable as exc:
        raise PaymentUnavailable(
            f"Stripe could not be reached to {action}.", transaction_id=txn.pk
        ) from exc
    except GatewayRejected as exc:  # e.g. an authorisation that expired at Stripe
        raise Conflict(
            f"Stripe refused to {action} {txn.pk}: {exc}", transaction_id=txn.pk
        ) from exc
    return record_result(txn.pk, result).transaction
