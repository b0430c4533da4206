"""Staff messages, written for a librarian reading them at a glance on a phone."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from library_service.core.money import to_cents


def usd(amount: Decimal) -> str:
    return f"${to_cents(amount):,.2f}"


def _book(title: str, author: str) -> str:
    return f"«{title}» by {author}"


def _days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"


def borrowing_created(
    *,
    borrowing_id: int,
    email: str,
    title: str,
    author: str,
    borrow_date: date,
    expected_return_date: date,
    fee: Decimal,
) -> str:
    days = (expected_return_date - borrow_date).days
    return (
        f"📚 New borrowing #{borrowing_id}\n"
        f"{_book(title, author)}\n"
        f"Member: {email}\n"
        f"From {borrow_date:%Y-%m-%d} to {expected_return_date:%Y-%m-%d} ({_days(days)}), "
        f"fee {usd(fee)}"
    )


def borrowing_returned(
    *,
    borrowing_id: int,
    email: str,
    title: str,
    author: str,
    expected_return_date: date,
    returned_on: date,
    fine: Decimal | None,
) -> str:
    late = (returned_on - expected_return_date).days
    timing = f"{_days(late)} late, fine {usd(fine)}" if fine is not None else "on time"
    return (
        f"↩️ Returned #{borrowing_id}: {_book(title, author)}\n"
        f"Member: {email}\n"
        f"Returned {returned_on:%Y-%m-%d}, due {expected_return_date:%Y-%m-%d}: {timing}"
    )


def payment_received(
    *,
    payment_id: int,
    payment_type: str,
    amount: Decimal,
    email: str,
    title: str,
    borrowing_id: int,
) -> str:
    what = "fine" if payment_type == "FINE" else "borrowing fee"
    return (
        f"💳 Payment received: {usd(amount)} {what}\n"
        f"Member: {email}\n"
        f"For «{title}» (borrowing #{borrowing_id}, payment #{payment_id})"
    )


def overdue_borrowing(
    *,
    borrowing_id: int,
    email: str,
    title: str,
    author: str,
    expected_return_date: date,
    today: date,
) -> str:
    late = (today - expected_return_date).days
    if late > 0:
        status = f"⏰ Overdue by {_days(late)}"
    elif late == 0:
        status = "⏰ Due today"
    else:
        status = "🔔 Due tomorrow"
    return (
        f"{status}: borrowing #{borrowing_id}\n"
        f"{_book(title, author)}\n"
        f"Member: {email}, due {expected_return_date:%Y-%m-%d}"
    )


NO_OVERDUE = "No borrowings overdue today!"
