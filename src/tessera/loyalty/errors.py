"""The problems loyalty's services raise, in one place: their codes are part of the API."""

from __future__ import annotations

from tessera.core.errors import Conflict, ProblemError


class AlreadyCompleted(Conflict):
    code = "already_completed"
    title = "Activity already completed"


class ActivityClosed(Conflict):
    code = "activity_closed"
    title = "Activity is not open"


class SoldOut(Conflict):
    code = "sold_out"
    title = "Not enough stock"


class AlreadyRefunded(Conflict):
    code = "already_refunded"
    title = "Order already refunded"


class InsufficientBalance(ProblemError):
    """402 for an order the wallet cannot cover. The refusal record and the admin email
    are kept although the request failed (rule 6 still holds: they committed)."""

    status = 402
    code = "insufficient_balance"
    title = "Insufficient balance"
    keeps_writes = True
