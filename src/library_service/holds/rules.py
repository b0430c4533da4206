"""The holds queue's rules, all of them, in one place (the service fetches the facts)."""

from __future__ import annotations

from datetime import date

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
from library_service.holds.repository import PlacementFacts
from library_service.models import OPEN_HOLD_STATUSES, Book, Hold, HoldStatus


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


def check_can_cancel(hold: Hold) -> None:
    if hold.status not in OPEN_HOLD_STATUSES:
        raise HoldClosedError


def is_uncollected(hold: Hold, *, today: date) -> bool:
    """A READY hold whose last pickup day has passed."""
    return (
        hold.status == HoldStatus.READY.value
        and hold.ready_until is not None
        and today > hold.ready_until
    )
