"""Posting to the ledger and checking it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.db.models.functions import Coalesce

from tessera.core.errors import ProblemError
from tessera.core.money import Money
from tessera.ledger.lock_objects import lock_accounts
from tessera.ledger.models import JournalEntry, LedgerAccount, Posting


def _transaction() -> AbstractContextManager[object]:
    return nullcontext() if connection.in_atomic_block else transaction.atomic()


class UnbalancedEntry(ValueError):
    pass


class InsufficientFunds(ProblemError):
    """An account that may not go negative would."""

    status = 402
    code = "insufficient_balance"
    title = "Insufficient balance"

    def __init__(self, account: LedgerAccount, balance: int, needed: int) -> None:
        locale = settings.TESSERA_LOCALE
        held, wanted = Money(balance, account.asset), Money(needed, account.asset)
        super().__init__(
            f"The balance of {held.format(locale)} does not cover {wanted.format(locale)}.",
            balance=balance,
            required=needed,
        )
        self.account = account


@dataclass(frozen=True)
class Leg:
    account: LedgerAccount
    amount: int


def get_or_create_account(
    code: str, *, name: str, asset: str, allow_negative: bool = False
) -> LedgerAccount:
    # The name is a label built from what it belongs to ("<program name>: points
    # issued"); cut to the column rather than refuse the program or member it is for.
    limit = LedgerAccount._meta.get_field("name").max_length or len(name)
    label = name if len(name) <= limit else name[: limit - 1] + "…"
    account, _ = LedgerAccount.objects.get_or_create(
        code=code, defaults={"name": label, "asset": asset, "allow_negative": allow_negative}
    )
    return account


@dataclass
class _Tally:
    """An entry's legs summed per account: what each account moves, and the accounts."""

    amounts: dict[str, int]
    accounts: dict[str, LedgerAccount]

    def pks(self, *, shared: bool) -> list[str]:
        """In primary-key order: the shared accounts (they may go negative), or the checked
        ones (they may not)."""
        return sorted(pk for pk in self.amounts if bool(self.accounts[pk].allow_negative) == shared)


def _tally(legs: Sequence[Leg]) -> _Tally:
    """Sum the legs per account; refuse an entry that is not integers, not between two
    accounts or does not balance per asset."""
    amounts: dict[str, int] = defaultdict(int)
    accounts: dict[str, LedgerAccount] = {}
    per_asset: dict[str, int] = defaultdict(int)
    for leg in legs:
        if not isinstance(leg.amount, int) or isinstance(leg.amount, bool):
            raise UnbalancedEntry(f"amounts are integers in minor units, got {leg.amount!r}")
        amounts[leg.account.pk] += leg.amount
        accounts[leg.account.pk] = leg.account
        per_asset[leg.account.asset] += leg.amount
    if len(accounts) < 2:
        raise UnbalancedEntry("an entry moves value between at least two accounts")
    if unbalanced := {a: s for a, s in per_asset.items() if s != 0}:
        raise UnbalancedEntry(f"postings do not sum to zero per asset: {unbalanced}")
    return _Tally(amounts, accounts)


def post(
    *,
    kind: str,
    reference: str,
    legs: Sequence[Leg],
    memo: str = "",
    object_type: str = "",
    object_id: str = "",
) -> tuple[JournalEntry, dict[str, int]]:
    """Post a balanced entry; returns it and the new balance of each account touched.

    The same ``reference`` twice returns the first entry and changes nothing. Accounts are
    locked in primary-key order (so two posts never deadlock), those that may not go
    negative are checked, and cached balances move in the same transaction."""
    tally = _tally(legs)
    fields = {"kind": kind, "reference": reference, "memo": memo[:255],
              "object_type": object_type, "object_id": object_id}  # fmt: skip
    # Inside the caller's transaction no savepoint of our own: it costs two round trips on
    # the hottest path we have, and a refusal (raised before any write) leaves that
    # transaction usable.
    with _transaction():
        # Only accounts that may not go negative are locked and checked. The others (a
        # program's issued and redeemed points, a payment purpose) are shared by every
        # member: they need no check, so they are moved by an atomic increment at the
        # end, which holds their row lock for the rest of the transaction only, not for
        # all of it. Lock order is the same everywhere: checked accounts by primary key,
        # then shared ones by primary key.
        checked = tally.pks(shared=False)
        locked = lock_accounts(checked)
        # Checked under the locks: a concurrent post of this reference (same accounts) has
        # either committed, and we return it, or waits behind us.
        existing = JournalEntry.objects.filter(reference=reference).first()
        if existing is not None:
            return existing, {}
        balances = _checked_balances(tally, locked)
        entry = _create_entry(fields, serialised=bool(checked))
        if entry is None:
            return JournalEntry.objects.get(reference=reference), {}
        _write(entry, tally, balances)
        return entry, balances


def _checked_balances(tally: _Tally, locked: Mapping[str, int]) -> dict[str, int]:
    """The new balance of each locked account; ``InsufficientFunds`` if one would go
    negative (nothing is written yet, so the caller's transaction stays usable)."""
    balances: dict[str, int] = {}
    for pk in tally.pks(shared=False):
        balance = locked[pk]
        new = balance + tally.amounts[pk]
        if new < 0:
            raise InsufficientFunds(tally.accounts[pk], balance, -tally.amounts[pk])
        balances[pk] = new
    return balances


def _create_entry(fields: Mapping[str, str], *, serialised: bool) -> JournalEntry | None:
    """Write the entry; None if a concurrent post of the same reference won.

    The unique reference still guards a reuse with other accounts: that raises."""
    if serialised:
        return JournalEntry.objects.create(**fields)
    # No lock serialises two posts of this reference between shared accounts only: the
    # second waits on the unique index, then returns the first's entry.
    try:
        with transaction.atomic():
            return JournalEntry.objects.create(**fields)
    except IntegrityError:
        return None


def _write(entry: JournalEntry, tally: _Tally, balances: dict[str, int]) -> None:
    """Write the postings and move the cached balances: the checked accounts to the
    balances worked out under their locks, the shared ones by an increment now or at the
    end of ``shared_accounts_last``. ``balances`` gains the shared accounts moved now, and
    every account object passed in the legs is left holding its new balance."""
    Posting.objects.bulk_create(
        Posting(entry=entry, account_id=pk, amount=delta)
        for pk, delta in sorted(tally.amounts.items())
        if delta != 0
    )
    for pk, new in balances.items():
        LedgerAccount.objects.filter(pk=pk).update(balance=new)
    shared = tally.pks(shared=True)
    if (pending := _pending_shared.get()) is not None:
        for pk in shared:
            pending[pk] += tally.amounts[pk]
    else:
        balances.update(_increment(shared, tally.amounts))
    for pk, new in balances.items():
        tally.accounts[pk].balance = new


_pending_shared: ContextVar[defaultdict[str, int] | None] = ContextVar(
    "tessera_ledger_pending_shared", default=None
)


@contextmanager
def shared_accounts_last() -> Iterator[None]:
    """Move the balances of shared accounts (those that may go negative: a program's
    issued and redeemed points, a payment purpose) once, when the block ends, instead of
    in each ``post``.

    Every order of every member moves the same redemption account, and its row lock is
    held from the update to the commit. A service that does more work after posting (an
    order writes its lines and timeline afterwards) wraps its transaction's body in this
    block, so that the lock is held for the last statement only. Must run inside the
    transaction it belongs to; ``post`` then returns no balances for shared accounts."""
    if not connection.in_atomic_block:
        raise RuntimeError("shared_accounts_last() belongs inside transaction.atomic()")
    pending: defaultdict[str, int] = defaultdict(int)
    token = _pending_shared.set(pending)
    try:
        yield
    finally:
        _pending_shared.reset(token)
    _increment(sorted(pk for pk, delta in pending.items() if delta), pending)


def _increment(pks: list[str], amounts: Mapping[str, int]) -> dict[str, int]:
    """Add to the balances of these accounts, one statement each in the given (primary
    key) order, so that their row locks are always taken in that order; returns their new
    balances."""
    qn = connection.ops.quote_name
    table, pk_col = qn(LedgerAccount._meta.db_table), qn(str(LedgerAccount._meta.pk.column))
    # Names only in the text; every value is a parameter.
    sql = f"UPDATE {table} SET balance = balance + %s WHERE {pk_col} = %s RETURNING balance"  # noqa: S608
    out: dict[str, int] = {}
    with connection.cursor() as cursor:
        for pk in pks:
            cursor.execute(sql, [amounts[pk], pk])
            out[pk] = int(cursor.fetchone()[0])
    return out


@dataclass
class VerifyReport:
    accounts: int = 0
    entries: int = 0
    balance_mismatches: list[tuple[str, int, int]] = field(default_factory=list)
    unbalanced_entries: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.balance_mismatches and not self.unbalanced_entries


def verify() -> VerifyReport:
    """Recompute every balance from postings and check every entry balances per asset.

    Each check is one statement, so it reads one snapshot: a post committing meanwhile
    can never show up as a difference between a balance and its postings."""
    report = VerifyReport()
    report.accounts = LedgerAccount.objects.count()
    report.balance_mismatches = [
        (code, balance, int(total))
        for code, balance, total in LedgerAccount.objects.annotate(
            total=Coalesce(Sum("postings__amount"), 0)
        )
        .exclude(balance=F("total"))
        .order_by("code")
        .values_list("code", "balance", "total")
    ]
    report.entries = JournalEntry.objects.count()
    per_entry = (
        Posting.objects.values("entry", "account__asset")
        .annotate(total=Sum("amount"))
        .exclude(total=0)
        .values_list("entry", "account__asset", "total")
    )
    report.unbalanced_entries = [(e, a, int(t)) for e, a, t in per_entry]
    return report
