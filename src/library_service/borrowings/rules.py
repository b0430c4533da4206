"""The loan rules, all of them, in one place.

The service fetches the facts (the book, the member's standing, the borrowing) and these
functions decide; the repository only says how to lock and fetch. Changing a loan rule is
an edit in this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from library_service.borrowings.errors import (
    AlreadyReturnedError,
    AmountTooLargeError,
    BookUnavailableError,
    FeeChangedError,
    InvalidReturnDateError,
    LoanLimitReachedError,
    ReturnDateTooFarError,
    UnpaidFinesError,
)
from library_service.core.config import Settings
from library_service.core.money import MAX_CHARGE, chargeable
from library_service.models import Book, Borrowing


@dataclass(frozen=True, slots=True)
class Standing:
    """What a member's record says about their borrowing."""

    active_borrowings: int
    has_unpaid_fine: bool  # a FINE that is PENDING or EXPIRED (an unpaid loan fee is not)


def check_return_date(expected: date, *, today: date, settings: Settings) -> None:
    """A loan ends after today and at most MAX_BORROW_DAYS ahead."""
    if expected <= today:
        raise InvalidReturnDateError
    latest = today + timedelta(days=settings.MAX_BORROW_DAYS)
    if expected > latest:
        raise ReturnDateTooFarError(
            f"expected_return_date can be at most {settings.MAX_BORROW_DAYS} days "
            f"ahead (on or before {latest:%Y-%m-%d})."
        )


def check_can_borrow(book: Book, standing: Standing, settings: Settings) -> None:
    """A copy is on the shelf, the member owes no fine and has room for one more loan."""
    if book.inventory <= 0:
        raise BookUnavailableError
    if standing.has_unpaid_fine:
        raise UnpaidFinesError
    if standing.active_borrowings >= settings.MAX_ACTIVE_BORROWINGS:
        raise LoanLimitReachedError(settings.MAX_ACTIVE_BORROWINGS)


def check_fee_unchanged(book: Book, *, quoted: Decimal) -> None:
    """The member is charged the fee they were quoted before Stripe was asked."""
    if book.daily_fee != quoted:
        raise FeeChangedError


def loan_fee(book: Book, *, today: date, until: date) -> Decimal:
    """The number of days times the daily fee, if one card payment can be that much."""
    fee = chargeable((until - today).days * book.daily_fee)
    if fee > MAX_CHARGE:  # only a fee stored before fees had a maximum can get here
        raise AmountTooLargeError
    return fee


def check_can_return(borrowing: Borrowing) -> None:
    if not borrowing.is_active:
        raise AlreadyReturnedError


def return_date(borrowing: Borrowing, *, today: date) -> date:
    """Today, but never before the borrow date (a clock or time zone change)."""
    return max(today, borrowing.borrow_date)


def fine(borrowing: Borrowing, book: Book, *, today: date, settings: Settings) -> Decimal | None:
    """Days late times the daily fee times FINE_MULTIPLIER, at most what one card payment
    can be (a return is never refused for its fine); None when on time."""
    late_days = (today - borrowing.expected_return_date).days
    if late_days <= 0:
        return None
    return min(chargeable(late_days * book.daily_fee * settings.FINE_MULTIPLIER), MAX_CHARGE)
