"""The members' daily reminders: a loan due soon, due today, overdue (with the fine so far).

One sweep per library day, in batches of active loans in id order, each batch one
transaction; a notice is written once per loan, kind and day (its dedupe key), so a sweep
that runs again, or two workers at once, send nothing twice. Memory stays that of a batch
however many loans are out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.borrowings import rules
from library_service.core import clock
from library_service.core.config import Settings
from library_service.core.db import UnitOfWork
from library_service.models import Book, Borrowing, User
from library_service.notifications import notices
from library_service.notifications.notices import Draft
from library_service.notifications.service import MemberNoticeService, Recipient

logger = logging.getLogger(__name__)

BATCH = 500


@dataclass(frozen=True, slots=True)
class LoanToRemind:
    id: int
    user_id: int
    email: str
    email_reminders: bool
    expected_return_date: date
    actual_return_date: date | None
    title: str
    author: str
    daily_fee: Decimal


def reminder(loan: LoanToRemind, *, today: date, settings: Settings) -> Draft | None:
    kind = rules.reminder_kind(loan, today=today, settings=settings)
    loan_id, title, author, due = loan.id, loan.title, loan.author, loan.expected_return_date
    if kind == notices.DUE_SOON:
        return notices.due_soon(
            borrowing_id=loan_id, title=title, author=author, due=due, today=today
        )
    if kind == notices.DUE_TODAY:
        return notices.due_today(borrowing_id=loan_id, title=title, author=author, due=due)
    if kind == notices.OVERDUE:
        fine = rules.fine(loan, loan, today=today, settings=settings)
        return notices.overdue(
            borrowing_id=loan_id, title=title, author=author, due=due, today=today, fine_so_far=fine
        )
    return None


async def loans_to_remind(
    session: AsyncSession, *, today: date, settings: Settings, after: int, batch: int
) -> list[LoanToRemind]:
    """The next batch of loans that call for a reminder today, by id after `after`."""
    statement = (
        select(
            Borrowing.id,
            Borrowing.user_id,
            User.email,
            User.email_reminders,
            Borrowing.expected_return_date,
            Borrowing.actual_return_date,
            Book.title,
            Book.author,
            Book.daily_fee,
        )
        .join(User, User.id == Borrowing.user_id)
        .join(Book, Book.id == Borrowing.book_id)
        .where(rules.reminder_clause(today=today, settings=settings), Borrowing.id > after)
        .order_by(Borrowing.id)
        .limit(batch)
    )
    return [LoanToRemind(**row) for row in (await session.execute(statement)).mappings()]


async def remind(uow: UnitOfWork, settings: Settings, *, today: date, batch: int = BATCH) -> int:
    """Write today's reminders; how many were new."""
    written, after = 0, 0
    while True:
        async with uow.read() as session:
            loans = await loans_to_remind(
                session, today=today, settings=settings, after=after, batch=batch
            )
        if not loans:
            return written
        drafts = []
        for loan in loans:
            draft = reminder(loan, today=today, settings=settings)
            if draft is not None:
                recipient = Recipient(loan.user_id, loan.email, loan.email_reminders)
                drafts.append((recipient, draft))
        async with uow.write() as session:
            written += len(await MemberNoticeService(session).record_many(drafts, one_job=True))
        after = loans[-1].id


async def send_reminders(ctx: dict[str, Any]) -> str:
    """The worker's daily sweep (at REMINDER_TIME, and at start-up once that has passed)."""
    settings: Settings = ctx["settings"]
    if clock.now().astimezone(settings.timezone).time() < settings.REMINDER_TIME:
        return "too early"
    today = clock.today(settings.timezone)
    written = await remind(UnitOfWork(ctx["db"], ctx["redis"]), settings, today=today)
    logger.info("reminders for %s: %d new", today, written)
    return f"{written} reminder(s)"
