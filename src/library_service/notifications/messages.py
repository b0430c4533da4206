"""Staff messages, written for a librarian reading them at a glance on a phone."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from library_service.core.money import to_cents
from library_service.models import Book, Borrowing, Hold


def usd(amount: Decimal) -> str:
    return f"${to_cents(amount):,.2f}"


def book_line(title: str, author: str) -> str:
    return f"«{title}» by {author}"


def days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"


def borrowing_created(borrowing: Borrowing, book: Book, email: str, *, fee: Decimal) -> str:
    start, due = borrowing.borrow_date, borrowing.expected_return_date
    return (
        f"📚 New borrowing #{borrowing.id}\n"
        f"{book_line(book.title, book.author)}\n"
        f"Member: {email}\n"
        f"From {start:%Y-%m-%d} to {due:%Y-%m-%d} ({days((due - start).days)}), "
        f"fee {usd(fee)}"
    )


def borrowing_returned(
    borrowing: Borrowing, book: Book, email: str, *, fine: Decimal | None
) -> str:
    returned_on, due = borrowing.actual_return_date, borrowing.expected_return_date
    assert returned_on is not None
    late = (returned_on - due).days
    if late <= 0:
        timing = "on time"
    elif fine is None:
        timing = f"{days(late)} late, within the grace days: no fine"
    else:
        timing = f"{days(late)} late, fine {usd(fine)}"
    return (
        f"↩️ Returned #{borrowing.id}: {book_line(book.title, book.author)}\n"
        f"Member: {email}\n"
        f"Returned {returned_on:%Y-%m-%d}, due {due:%Y-%m-%d}: {timing}"
    )


def borrowing_extended(
    borrowing: Borrowing, book: Book, email: str, *, previous_due: date, fee: Decimal
) -> str:
    added = (borrowing.expected_return_date - previous_due).days
    return (
        f"⏩ Extended #{borrowing.id}: {book_line(book.title, book.author)}\n"
        f"Member: {email}\n"
        f"Due {borrowing.expected_return_date:%Y-%m-%d} instead of {previous_due:%Y-%m-%d} "
        f"(+{days(added)}, fee {usd(fee)}; extension {borrowing.extensions})"
    )


def hold_ready(hold: Hold, book: Book, email: str) -> str:
    assert hold.ready_until is not None
    return (
        f"📦 Put aside «{book.title}» for {email} until {hold.ready_until:%Y-%m-%d}\n"
        f"Hold #{hold.id}, {book_line(book.title, book.author)}"
    )


def hold_expired(hold: Hold, book: Book, email: str, *, passed_to: str | None) -> str:
    assert hold.ready_until is not None
    after = f"the copy goes to {passed_to}" if passed_to else "the copy goes back on the shelf"
    return (
        f"⌛ Hold #{hold.id} expired: {email} did not collect «{book.title}» "
        f"by {hold.ready_until:%Y-%m-%d}; {after}"
    )


def hold_cancelled_by_withdrawal(hold: Hold, book: Book, email: str) -> str:
    return f"🚫 Hold #{hold.id} cancelled: «{book.title}» was withdrawn; tell {email}" + (
        " (a copy was put aside for them: back on the shelf)" if hold.ready_until else ""
    )
