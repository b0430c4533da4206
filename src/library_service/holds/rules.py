"""The holds queue's rules, all of them, in one place (the service fetches the facts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, and_

from library_service.books.errors import BookWithdrawnError
from library_service.borrowings import rules as loan_rules
from library_service.core.config import Settings
from library_service.holds.errors import (
    AlreadyBorrowingError,
    AlreadyOnHoldError,
    BookAvailableError,
    HoldClosedError,
    HoldLimitReachedError,
)
from library_service.models import OPEN_HOLD_STATUSES, Book, Hold, HoldStatus


@dataclass(frozen=True, slots=True)
class PlacementFacts:
    open_holds: int
    holds_this_book: bool
    borrows_this_book: bool


def check_can_place(
    book: Book, facts: PlacementFacts, standing: loan_rules.Standing, settings: Settings
) -> None:
    """A member joins the queue of a book in circulation with no copy on the shelf, once,
    not while borrowing it, within MAX_ACTIVE_HOLDS, and owing no fine."""
    if book.withdrawn:
        raise BookWithdrawnError
    if book.inventory > 0:
        raise BookAvailableError
    if facts.holds_this_book:
        raise AlreadyOnHoldError
    if facts.borrows_this_book:
        raise AlreadyBorrowingError
    if facts.open_holds >= settings.MAX_ACTIVE_HOLDS:
        raise HoldLimitReachedError(settings.MAX_ACTIVE_HOLDS)
    loan_rules.check_no_unpaid_fine(standing)


def can_cancel(hold: Hold) -> bool:
    """Only an open hold (WAITING or READY) can be cancelled."""
    return hold.status in OPEN_HOLD_STATUSES


def can_hand_over(hold: Hold) -> bool:
    """A READY hold's copy is put aside: the desk lends it to the hold's member."""
    return hold.status == HoldStatus.READY.value


def check_can_cancel(hold: Hold) -> None:
    if not can_cancel(hold):
        raise HoldClosedError


def is_uncollected(hold: Hold, *, today: date) -> bool:
    """A READY hold whose last pickup day has passed."""
    return (
        hold.status == HoldStatus.READY.value
        and hold.ready_until is not None
        and hold.ready_until < today
    )


def uncollected_clause(*, today: date) -> ColumnElement[bool]:
    return and_(Hold.status == HoldStatus.READY.value, Hold.ready_until < today)
