"""The loan rules, all of them, in one place.

The service fetches the facts (the book, the member's standing, the borrowing) and these
functions decide; the repository only says how to lock and fetch. Changing a loan rule is
an edit in this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Protocol

from sqlalchemy import ColumnElement, Date, and_, func, literal, or_

from library_service.books.errors import BookWithdrawnError
from library_service.borrowings.errors import (
    AlreadyReturnedError,
    AmountTooLargeError,
    BookOnHoldError,
    BookUnavailableError,
    BorrowingChangedError,
    BorrowingOverdueError,
    ExtensionLimitReachedError,
    FeeChangedError,
    InvalidExtensionDateError,
    InvalidReturnDateError,
    LendingForOthersError,
    LoanLimitReachedError,
    MemberInactiveError,
    ReturnDateTooFarError,
    UnpaidFinesError,
)
from library_service.core.config import Settings
from library_service.core.money import MAX_CHARGE, chargeable
from library_service.models import Book, Borrowing
from library_service.notifications import notices


class LoanDates(Protocol):
    """A loan as the rules on its dates need it: an ORM row or a list item."""

    @property
    def expected_return_date(self) -> date: ...
    @property
    def actual_return_date(self) -> date | None: ...


# -- when a loan is due: in Python for a loan at hand, and as SQL for a query ---------------


def is_due_by(loan: LoanDates, *, day: date) -> bool:
    """Still out, and due on or before `day`."""
    return loan.actual_return_date is None and loan.expected_return_date <= day


def due_by_clause(*, day: date) -> ColumnElement[bool]:
    return and_(on_loan_clause(), Borrowing.expected_return_date <= day)


def is_overdue(loan: LoanDates, *, today: date) -> bool:
    """Still out after its due day (a loan due today is not overdue yet)."""
    return is_due_by(loan, day=today - timedelta(days=1))


def overdue_clause(*, today: date) -> ColumnElement[bool]:
    return due_by_clause(day=today - timedelta(days=1))


def days_late(loan: LoanDates, *, today: date) -> int:
    """Days past the due day, for a loan still out (0 when it is not overdue)."""
    if not is_overdue(loan, today=today):
        return 0
    return (today - loan.expected_return_date).days


# -- which reminder a loan gets today ------------------------------------------------------


def reminder_kind(loan: LoanDates, *, today: date, settings: Settings) -> str | None:
    """A loan still out is reminded DUE_REMINDER_DAYS before its due day, on its due day,
    and once overdue on its first day late and every OVERDUE_REMINDER_DAYS after that."""
    if loan.actual_return_date is not None:
        return None
    due = loan.expected_return_date
    if due == today + timedelta(days=settings.DUE_REMINDER_DAYS):
        return notices.DUE_SOON
    if due == today:
        return notices.DUE_TODAY
    late = (today - due).days
    if late >= 1 and (late - 1) % settings.OVERDUE_REMINDER_DAYS == 0:
        return notices.OVERDUE
    return None


def reminder_clause(*, today: date, settings: Settings) -> ColumnElement[bool]:
    due = Borrowing.expected_return_date
    late = literal(today, Date) - due
    return and_(
        Borrowing.actual_return_date.is_(None),
        or_(
            due == today + timedelta(days=settings.DUE_REMINDER_DAYS),
            due == today,
            and_(due < today, func.mod(late - 1, settings.OVERDUE_REMINDER_DAYS) == 0),
        ),
    )


def is_due_on(loan: LoanDates, *, day: date) -> bool:
    """Still out, and due back on `day` (the desk's "returns due today")."""
    return loan.actual_return_date is None and loan.expected_return_date == day


def due_on_clause(*, day: date) -> ColumnElement[bool]:
    return and_(on_loan_clause(), Borrowing.expected_return_date == day)


def can_return(loan: LoanDates) -> bool:
    """Still on loan: not yet returned."""
    return loan.actual_return_date is None


def on_loan_clause() -> ColumnElement[bool]:
    """`can_return` as SQL: the loans still out."""
    return Borrowing.actual_return_date.is_(None)


class ExtendableLoan(LoanDates, Protocol):
    @property
    def extensions(self) -> int: ...


def may_extend(loan: ExtendableLoan, *, today: date, settings: Settings) -> bool:
    """What the loan alone tells of `check_can_extend`: still out, not overdue, extended
    fewer than MAX_EXTENSIONS times (the desk's Extend button; the service checks the
    queue and the member's fines as well)."""
    return (
        can_return(loan)
        and not is_overdue(loan, today=today)
        and loan.extensions < settings.MAX_EXTENSIONS
    )


def desk_due_date(*, today: date, settings: Settings) -> date:
    """The due date the desk offers: DEFAULT_LOAN_DAYS ahead, within MAX_BORROW_DAYS."""
    return today + timedelta(days=min(settings.DEFAULT_LOAN_DAYS, settings.MAX_BORROW_DAYS))


@dataclass(frozen=True, slots=True)
class Standing:
    """What a member's record says about their borrowing."""

    active_borrowings: int
    has_unpaid_fine: bool  # a FINE that is PENDING or EXPIRED (an unpaid loan fee is not)


@dataclass(frozen=True, slots=True)
class BorrowFacts:
    book: Book
    standing: Standing
    ready_hold_id: int | None  # the member's READY hold on this book: its copy is theirs


@dataclass(frozen=True, slots=True)
class ExtensionFacts:
    standing: Standing
    others_waiting: bool  # another member's hold waits for this book


def borrower_of(actor_id: int, *, actor_is_staff: bool, named: int | None) -> int:
    """Whom a loan is for: the caller, or the member staff name at the desk (a member may
    name only themselves)."""
    if named is None or named == actor_id:
        return actor_id
    if not actor_is_staff:
        raise LendingForOthersError
    return named


def check_member_active(is_active: bool) -> None:
    """Nothing is lent to a deactivated account (a member's own request cannot even be
    made: their tokens ended with it)."""
    if not is_active:
        raise MemberInactiveError


def check_return_date(expected: date, *, today: date, settings: Settings) -> None:
    """A loan ends after today and at most MAX_BORROW_DAYS ahead."""
    if expected <= today:
        raise InvalidReturnDateError
    _check_not_too_far(expected, today=today, settings=settings)


def _check_not_too_far(expected: date, *, today: date, settings: Settings) -> None:
    latest = today + timedelta(days=settings.MAX_BORROW_DAYS)
    if expected > latest:
        raise ReturnDateTooFarError(
            f"expected_return_date can be at most {settings.MAX_BORROW_DAYS} days "
            f"ahead (on or before {latest:%Y-%m-%d})."
        )


def check_no_unpaid_fine(standing: Standing) -> None:
    """A member who owes a fine may neither borrow, nor join a queue, nor extend a loan."""
    if standing.has_unpaid_fine:
        raise UnpaidFinesError


def check_can_borrow(facts: BorrowFacts, settings: Settings) -> None:
    """The book is in circulation and a copy is the member's to take (one put aside for
    them, or one on the shelf); they owe no fine and have room for one more loan."""
    if facts.book.withdrawn:
        raise BookWithdrawnError
    if facts.ready_hold_id is None and facts.book.inventory <= 0:
        raise BookUnavailableError
    check_no_unpaid_fine(facts.standing)
    if facts.standing.active_borrowings >= settings.MAX_ACTIVE_BORROWINGS:
        raise LoanLimitReachedError(settings.MAX_ACTIVE_BORROWINGS)


def check_fee_unchanged(book: Book, *, quoted: Decimal) -> None:
    """The member is charged the fee they were quoted before Stripe was asked."""
    if book.daily_fee != quoted:
        raise FeeChangedError


def loan_fee(book: Book, *, start: date, end: date) -> Decimal:
    """The number of days times the daily fee, if one card payment can be that much."""
    fee = chargeable((end - start).days * book.daily_fee)
    if fee > MAX_CHARGE:  # only a fee stored before fees had a maximum can get here
        raise AmountTooLargeError
    return fee


def check_can_extend(
    borrowing: Borrowing,
    facts: ExtensionFacts,
    *,
    until: date,
    today: date,
    settings: Settings,
) -> None:
    """A loan still running and not overdue moves to a later date, at most MAX_BORROW_DAYS
    from today and MAX_EXTENSIONS times, unless someone waits for the book or a fine is
    unpaid."""
    check_can_return(borrowing)
    if is_overdue(borrowing, today=today):
        raise BorrowingOverdueError
    if until <= borrowing.expected_return_date:
        raise InvalidExtensionDateError
    _check_not_too_far(until, today=today, settings=settings)
    if borrowing.extensions >= settings.MAX_EXTENSIONS:
        raise ExtensionLimitReachedError(settings.MAX_EXTENSIONS)
    if facts.others_waiting:
        raise BookOnHoldError
    check_no_unpaid_fine(facts.standing)


@dataclass(frozen=True, slots=True)
class ExtensionQuote:
    """What the member was charged for, before Stripe was asked."""

    due: date
    daily_fee: Decimal
    until: date


def check_extension_quote(borrowing: Borrowing, quote: ExtensionQuote) -> None:
    """The loan and its fee are still those the extension was priced on."""
    if borrowing.expected_return_date != quote.due:
        raise BorrowingChangedError
    check_fee_unchanged(borrowing.book, quoted=quote.daily_fee)


def check_can_return(borrowing: Borrowing) -> None:
    if not can_return(borrowing):
        raise AlreadyReturnedError


def return_date(borrowing: Borrowing, *, today: date) -> date:
    """Today, but never before the borrow date (a clock or time zone change)."""
    return max(today, borrowing.borrow_date)


class PricedBook(Protocol):
    @property
    def daily_fee(self) -> Decimal: ...


def fine(
    borrowing: LoanDates, book: PricedBook, *, today: date, settings: Settings
) -> Decimal | None:
    """Days late past FINE_GRACE_DAYS, times the daily fee times FINE_MULTIPLIER; at most
    FINE_MAX_AMOUNT, and never more than one card payment can be (a return is never refused
    for its fine). None when nothing is owed."""
    charged_days = (today - borrowing.expected_return_date).days - settings.FINE_GRACE_DAYS
    if charged_days <= 0:
        return None
    cap = settings.FINE_MAX_AMOUNT or MAX_CHARGE
    return min(chargeable(charged_days * book.daily_fee * settings.FINE_MULTIPLIER), cap)
