from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from tessera.ledger.models import ImmutableError, JournalEntry, LedgerAccount, Posting
from tessera.ledger.services import (
    InsufficientFunds,
    Leg,
    UnbalancedEntry,
    get_or_create_account,
    post,
    verify,
)

pytestmark = pytest.mark.django_db


def accounts() -> tuple[LedgerAccount, LedgerAccount, LedgerAccount]:
    src = get_or_create_account("src", name="source", asset="PTS", allow_negative=True)
    dst = get_or_create_account("dst", name="wallet", asset="PTS")
    usd = get_or_create_account("usd", name="cash", asset="USD", allow_negative=True)
    return src, dst, usd


def test_post_moves_balances() -> None:
    src, dst, _ = accounts()
    _, balances = post(kind="t", reference="r1", legs=[Leg(dst, 500), Leg(src, -500)])
    assert balances == {dst.pk: 500, src.pk: -500}


def test_a_post_under_a_used_reference_replays_the_entry() -> None:
    src, dst, _ = accounts()
    entry, _ = post(kind="t", reference="r1", legs=[Leg(dst, 500), Leg(src, -500)])
    again, replay = post(kind="t", reference="r1", legs=[Leg(dst, 500), Leg(src, -500)])
    assert again.pk == entry.pk
    assert replay == {}


def test_a_replayed_post_moves_nothing_again() -> None:
    src, dst, _ = accounts()
    post(kind="t", reference="r1", legs=[Leg(dst, 500), Leg(src, -500)])
    post(kind="t", reference="r1", legs=[Leg(dst, 500), Leg(src, -500)])
    dst.refresh_from_db()
    assert dst.balance == 500
    assert Posting.objects.count() == 2


@pytest.mark.parametrize(
    "legs",
    [
        lambda s, d, u: [Leg(d, 5), Leg(s, -4)],  # does not sum to zero
        lambda s, d, u: [Leg(d, 5), Leg(u, -5)],  # sums to zero across two assets only
        lambda s, d, u: [Leg(d, 5)],  # one account
        lambda s, d, u: [Leg(d, 1.5), Leg(s, -1.5)],  # not minor units
    ],
)
def test_unbalanced_entries_are_refused(legs) -> None:  # type: ignore[no-untyped-def]
    src, dst, usd = accounts()
    with pytest.raises(UnbalancedEntry):
        post(kind="t", reference="bad", legs=legs(src, dst, usd))
    assert JournalEntry.objects.count() == 0


def test_accounts_that_may_not_go_negative_do_not() -> None:
    src, dst, _ = accounts()
    post(kind="t", reference="in", legs=[Leg(dst, 10), Leg(src, -10)])
    with pytest.raises(InsufficientFunds):
        post(kind="t", reference="out", legs=[Leg(dst, -11), Leg(src, 11)])
    dst.refresh_from_db()
    assert dst.balance == 10
    assert not JournalEntry.objects.filter(reference="out").exists()


def test_entries_are_immutable() -> None:
    src, dst, _ = accounts()
    entry, _ = post(kind="t", reference="r", legs=[Leg(dst, 1), Leg(src, -1)])
    with pytest.raises(ImmutableError):
        entry.memo = "changed"
        entry.save()
    with pytest.raises(ImmutableError):
        entry.delete()
    with pytest.raises(ImmutableError):
        Posting.objects.first().save()  # type: ignore[union-attr]


def test_verify_command_passes_then_reports_drift() -> None:
    src, dst, _ = accounts()
    post(kind="t", reference="r", legs=[Leg(dst, 7), Leg(src, -7)])
    out = StringIO()
    call_command("ledger", "verify", stdout=out)
    assert "OK: 3 accounts and 1 entries agree" in out.getvalue()
    LedgerAccount.objects.filter(pk=dst.pk).update(balance=8)  # simulate a bug
    assert not verify().ok
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("ledger", "verify", stdout=out)
    assert exit_info.value.code == 1
    assert "MISMATCH dst: cached balance 8, postings sum 7" in out.getvalue()
