"""The checkout saga, in the order of execution of Salesforce-native event apps:

1. validate everything (``validation.plan_checkout``), writing nothing;
2. resolve the buyer and each attendee to a Contact (or a linked Lead) or a new Contact;
3. record the attendees (``pending``), their answers, the draft invoice with one line per
   item bought and its attendee, then take capacity (items in key order, the event's
   counter last) and the promo code's use;
4. pay: by card through the billing saga (never inside a transaction: rule 4, so a card
   checkout commits step 3 first), by points from the buyer's wallet, or nothing;
5. complete (``outcome.complete``) or fail (``outcome.fail``), each in one transaction.

A free or points checkout calls nothing outside the database: steps 2 to 5 are one
transaction, its attendees are written registered, and the rows every checkout shares
(item, event, the program's redemption account, the invoice counter) are locked by its
last statements, so they are held for milliseconds, not for the whole checkout.

A request carrying an Idempotency-Key is remembered on its checkout: a retry after a crash
resumes it (and the billing saga resumes its payment) instead of registering twice.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tessera.billing.invoices import LineSpec, create_draft_invoice
from tessera.billing.models import Invoice
from tessera.billing.services import charge_card
from tessera.core.errors import ProblemError, ValidationFailed
from tessera.core.ids import new_id
from tessera.core.metrics import counts_checkouts
from tessera.core.money import format_points
from tessera.crm.inputs import ContactInput
from tessera.crm.models import Contact, Lead
from tessera.crm.services import contact_for, resolve_person
from tessera.events import capacity, outcome
from tessera.events.lock_objects import lock_waitlist_entry
from tessera.events.models import Answer, Attendee, Checkout, WaitlistEntry
from tessera.events.requests import CheckoutIn, CheckoutOutcome, PersonIn
from tessera.events.tickets import sign_ticket
from tessera.events.validation import Plan, plan_checkout
from tessera.ledger.services import InsufficientFunds
from tessera.loyalty.models import WalletTransaction
from tessera.loyalty.wallet import move_points

CHECKOUT_PURPOSE = "checkout"


class InsufficientPoints(ProblemError):
    status = 402
    code = "insufficient_balance"
    title = "Insufficient balance"


def hold_minutes() -> int:
    return int(getattr(settings, "TESSERA_CHECKOUT_HOLD_MINUTES", 15))


@counts_checkouts
def check_out(request: CheckoutIn, *, request_key: str | None = None) -> CheckoutOutcome:
    """Run a checkout; see the module doc. Must be called outside a transaction.

    A free or points checkout calls nothing outside the database, so its steps 2 to 5 run
    in one transaction: a refusal of the wallet still commits the checkout as failed, with
    everything it held given back. A card checkout commits what it holds before Stripe is
    called."""
    if request_key and (earlier := Checkout.objects.filter(request_key=request_key).first()):
        return resume(earlier)
    plan = plan_checkout(request)
    if plan.payment == Checkout.Payment.CARD:
        reserved = reserve(plan, request_key)
        return _charge(reserved.checkout, payment_method_id=plan.card_id)
    return _settle_in_one(plan, request_key)


def resume(checkout: Checkout) -> CheckoutOutcome:
    """The same request again: what the first attempt achieved, finished if it can be. A
    card still pending is asked about at Stripe (billing resumes its transaction by the
    same request key) and charged only if Stripe never saw the first attempt."""
    if checkout.status == Checkout.Status.PENDING and checkout.payment == Checkout.Payment.CARD:
        return _charge(checkout, payment_method_id=checkout.stripe_payment_method)
    return outcome.describe(checkout)


# --- step 2 and 3 -------------------------------------------------------------------------


def _people(plan: Plan) -> tuple[Contact, list[tuple[Contact, Lead | None]]]:
    """The buyer's contact, and each attendee's contact with the Lead it was matched to.
    The same person typed twice in one order is resolved once."""
    seen: dict[ContactInput, tuple[Contact, Lead | None]] = {}

    def resolve(person: PersonIn) -> tuple[Contact, Lead | None]:
        key = person.as_contact()
        if key not in seen:
            found = resolve_person(key)
            lead = found.record if isinstance(found.record, Lead) else None
            seen[key] = (contact_for(found), lead)
        return seen[key]

    buyer, _ = resolve(plan.request.buyer)
    return buyer, [resolve(plan.request.attendees[a.index].person) for a in plan.attendees]


@dataclass
class Reserved:
    """What step 3 wrote, kept in memory so completing and answering read nothing back."""

    checkout: Checkout
    attendees: list[Attendee]
    invoice: Invoice


@transaction.atomic(savepoint=False)
def reserve(plan: Plan, request_key: str | None) -> Reserved:
    """Steps 2 and 3 of a card checkout in one transaction, committed before Stripe is
    called: nothing of it stays if capacity is short."""
    reserved = record(plan, request_key)
    _take_places(reserved, plan)  # last: the item and event rows are shared
    return reserved


def record(plan: Plan, request_key: str | None, *, registered: bool = False) -> Reserved:
    """Resolve the people and write the checkout, its attendees and their answers, then
    the draft invoice and its lines; no capacity is taken yet. ``registered``: attendees
    of a checkout that completes in this same transaction are written registered (a
    refusal there cancels them, and nobody outside sees them in between)."""
    buyer, people = _people(plan)
    checkout_id, now = new_id("chk"), timezone.now()
    attendees = _new_attendees(plan, people, checkout_id, registered=registered, now=now)
    invoice_id = new_id("inv")
    # In the order of the records' story: the checkout, its attendees and their answers,
    # then the invoice and its lines (foreign keys are checked at commit, so the checkout
    # may name its invoice first).
    checkout = _create_checkout(plan, buyer, checkout_id, invoice_id, request_key, now=now)
    Attendee.objects.bulk_create(attendees)
    _save_answers(plan, checkout, attendees)
    invoice = create_draft_invoice(
        bill_to=buyer,
        currency=plan.event.currency,
        lines=_invoice_lines(plan, attendees),
        reference=checkout_id,
        invoice_id=invoice_id,
    )
    checkout.invoice = invoice
    return Reserved(checkout, attendees, invoice)


def _new_attendees(
    plan: Plan,
    people: list[tuple[Contact, Lead | None]],
    checkout_id: str,
    *,
    registered: bool,
    now: datetime,
) -> list[Attendee]:
    """One unsaved attendee per planned one, its ticket code signed now (valid at the door
    only once registered)."""
    attendees = [
        Attendee(
            id=new_id("att"),
            event=plan.event,
            checkout_id=checkout_id,
            contact=contact,
            lead=lead,
            ticket=planned.ticket,
            status=Attendee.Status.REGISTERED if registered else Attendee.Status.PENDING,
            registered_at=now if registered else None,
        )
        for planned, (contact, lead) in zip(plan.attendees, people, strict=True)
    ]
    for attendee in attendees:
        attendee.code = sign_ticket(attendee.pk, plan.event.pk)
    return attendees


def _invoice_lines(plan: Plan, attendees: list[Attendee]) -> list[LineSpec]:
    """The plan's lines, each naming its attendee's id instead of the attendee's index."""
    by_index = {p.index: a.pk for p, a in zip(plan.attendees, attendees, strict=True)}
    return [replace(line, attendee_id=by_index[int(line.attendee_id)]) for line in plan.lines]


def _held(plan: Plan) -> tuple[dict[str, int], int]:
    """What the checkout will take: the items and places wanted, less the place a waitlist
    offer already holds for it."""
    wanted, places = dict(plan.wanted), plan.places
    if plan.offer is not None:
        wanted[plan.offer.item_id] -= 1
        places -= 1 if plan.offer.item.takes_a_place else 0
    return wanted, places


def _create_checkout(
    plan: Plan,
    buyer: Contact,
    checkout_id: str,
    invoice_id: str,
    request_key: str | None,
    *,
    now: datetime,
) -> Checkout:
    held_items, held_places = _held(plan)
    return Checkout.objects.create(
        id=checkout_id,
        event=plan.event,
        buyer=buyer,
        payment=plan.payment,
        member=plan.member,
        invoice_id=invoice_id,
        promo_code=plan.promo,
        waitlist_entry=_locked_offer(plan),
        held_items=held_items,
        held_places=held_places,
        total=plan.total,
        currency=plan.event.currency,
        points=plan.points,
        stripe_payment_method=plan.card_id,
        hold_expires_at=now + timedelta(minutes=hold_minutes()),
        request_key=request_key,
    )


def _take_places(reserved: Reserved, plan: Plan) -> None:
    """The promo code's use, then the places (items in key order, the event's row last)."""
    checkout = reserved.checkout
    if plan.promo is not None:
        capacity.take_promo_use(plan.promo)
    capacity.take_places(plan.event, checkout.held_items, checkout.held_places)


def _locked_offer(plan: Plan) -> WaitlistEntry | None:
    if plan.offer is None:
        return None
    entry = lock_waitlist_entry(plan.offer.pk)
    ended = (Checkout.Status.FAILED, Checkout.Status.EXPIRED)
    taken = entry.checkouts.exclude(status__in=ended).exists()  # another checkout redeems it
    if entry.status != WaitlistEntry.Status.OFFERED or taken:
        raise ValidationFailed.field("waitlist_token", "this offer has been used or withdrawn")
    return entry


def _save_answers(plan: Plan, checkout: Checkout, attendees: list[Attendee]) -> None:
    rows = [
        Answer(checkout=checkout, attendee=attendee, question_id=qid, value=value)
        for planned, attendee in zip(plan.attendees, attendees, strict=True)
        for qid, value in planned.answers.items()
    ]
    rows += [
        Answer(checkout=checkout, question_id=qid, value=value)
        for qid, value in plan.order_answers.items()
    ]
    if rows:
        Answer.objects.bulk_create(rows)


# --- step 4 and 5 -------------------------------------------------------------------------


def _charge(checkout: Checkout, *, payment_method_id: str) -> CheckoutOutcome:
    """Step 4 by card; billing settles the outcome here (``outcome.settle_checkout``), in
    the transaction that records it, so a capture and its registration are one."""
    try:
        txn, result = charge_card(
            contact=checkout.buyer,
            amount=checkout.total,
            currency=checkout.currency,
            payment_method_id=payment_method_id,
            purpose=CHECKOUT_PURPOSE,
            purpose_id=checkout.pk,
            request_key=checkout.request_key,
        )
    except ProblemError as exc:  # declined, rejected, unreachable: billing settled it
        exc.extra.setdefault("checkout_id", checkout.pk)
        raise
    if result is not None and result.status == "requires_action":
        # The buyer finishes 3-D Secure with the client secret; the webhook (or the
        # reconciler) completes the checkout, and its places stay held until then.
        Checkout.objects.filter(pk=checkout.pk, status=Checkout.Status.PENDING).update(
            status=Checkout.Status.REQUIRES_ACTION, transaction=txn
        )
        return CheckoutOutcome(checkout.pk, "requires_action", client_secret=result.client_secret)
    return outcome.describe(Checkout.objects.get(pk=checkout.pk))


def _settle_in_one(plan: Plan, request_key: str | None) -> CheckoutOutcome:
    with transaction.atomic():
        reserved = record(plan, request_key, registered=True)
        # A refused wallet rolls back to this savepoint, and only that; nothing else in a
        # free checkout can fail without failing it all.
        paying = plan.payment == Checkout.Payment.WALLET
        try:
            with transaction.atomic() if paying else nullcontext():
                outcome.complete(
                    reserved.checkout,
                    attendees=reserved.attendees,
                    invoice=reserved.invoice,
                    take=lambda: _take_and_pay(reserved, plan),
                )
            refused = None
        except InsufficientFunds as exc:  # nothing was taken: there is nothing to give back
            outcome.fail(reserved.checkout, "insufficient_balance", str(exc.detail), held=False)
            refused = exc
    if refused is not None:  # raised once the recorded failure has committed
        balance = int(refused.extra.get("balance", 0))
        locale = settings.TESSERA_LOCALE
        raise InsufficientPoints(
            f"The wallet holds {format_points(balance, locale)}; this checkout needs "
            f"{format_points(reserved.checkout.points, locale)}.",
            balance=balance,
            required=reserved.checkout.points,
            checkout_id=reserved.checkout.pk,
        )
    return outcome.loaded(reserved.checkout, reserved.attendees, reserved.invoice)


def _take_and_pay(reserved: Reserved, plan: Plan) -> WalletTransaction | None:
    """The end of a free or points checkout, just before the invoice's number: every row
    other checkouts share (item, event, the program's redemption account, the numbering
    counter) is locked here, for the last few statements before the commit."""
    _take_places(reserved, plan)
    if reserved.checkout.payment != Checkout.Payment.WALLET:
        return None
    checkout, member = reserved.checkout, plan.member
    if member is None:
        raise TypeError("a wallet checkout has a member")
    return move_points(
        member,
        type=WalletTransaction.Type.ORDER_PLACED,
        points=-checkout.points,
        reference=f"checkout:{checkout.pk}",
        counter=member.program.redemption_account,
        object_type="checkout",
        object_id=checkout.pk,
        detail={
            "event": plan.event.name,
            "event_id": plan.event.pk,
            "checkout_id": checkout.pk,
            "invoice_id": checkout.invoice_id,
        },
    )
