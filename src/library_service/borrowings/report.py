"""The staff's morning report: every loan due tomorrow or earlier, and the copies put aside
for holds. Written once per library day, through the outbox, by the worker's cron."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.borrowings import rules
from library_service.core import clock
from library_service.core.db import UnitOfWork
from library_service.models import Book, Borrowing, Hold, HoldStatus, User
from library_service.notifications.messages import book_line, days
from library_service.notifications.repository import NotificationRepository
from library_service.notifications.service import NotificationService

logger = logging.getLogger(__name__)

NO_OVERDUE = "No borrowings overdue today!"
REPORT_CHUNK = 500  # borrowings read (and written as messages) at a time


@dataclass(frozen=True, slots=True)
class DueBorrowing:
    """An active borrowing the daily report names."""

    id: int
    expected_return_date: date
    email: str
    title: str
    author: str


@dataclass(frozen=True, slots=True)
class CopyPutAside:
    """A READY hold: its copy waits for its member until `ready_until`."""

    id: int
    ready_until: date
    email: str
    title: str


async def borrowings_due_by(
    session: AsyncSession,
    last_day: date,
    *,
    after: tuple[date, int] | None = None,
    limit: int = REPORT_CHUNK,
) -> list[DueBorrowing]:
    """Up to `limit` active borrowings due by `last_day`, soonest first, after the
    (expected_return_date, id) `after` if given: the report reads its lines a chunk at a
    time along ix_borrowings_active_expected_return_date_id. The member's email and the
    book come from one primary-key lookup each per borrowing named: the work grows with
    the chunk, not with the members and books there are (a join would read both tables
    whole once the report is a few thousand lines long)."""
    statement = (
        select(
            Borrowing.id,
            Borrowing.expected_return_date,
            _looked_up(User.email, User.id == Borrowing.user_id),
            _looked_up(Book.title, Book.id == Borrowing.book_id),
            _looked_up(Book.author, Book.id == Borrowing.book_id),
        )
        .where(rules.due_by_clause(day=last_day))
        .order_by(Borrowing.expected_return_date, Borrowing.id)
        .limit(limit)
    )
    if after is not None:
        statement = statement.where(
            tuple_(Borrowing.expected_return_date, Borrowing.id) > tuple_(*after)
        )
    rows = (await session.execute(statement)).mappings()
    return [DueBorrowing(**row) for row in rows]


async def _chunks_due_by(
    session: AsyncSession, last_day: date
) -> AsyncIterator[list[DueBorrowing]]:
    """Every borrowing due by `last_day`, soonest first, REPORT_CHUNK at a time."""
    after = None
    while chunk := await borrowings_due_by(session, last_day, after=after, limit=REPORT_CHUNK):
        yield chunk
        if len(chunk) < REPORT_CHUNK:
            return
        after = (chunk[-1].expected_return_date, chunk[-1].id)


async def holds_put_aside(session: AsyncSession, *, from_day: date) -> list[CopyPutAside]:
    """READY holds still to be collected, the last day soonest first (looked up as in
    `borrowings_due_by`)."""
    statement = (
        select(
            Hold.id,
            Hold.ready_until,
            _looked_up(User.email, User.id == Hold.user_id),
            _looked_up(Book.title, Book.id == Hold.book_id),
        )
        .where(Hold.status == HoldStatus.READY.value, Hold.ready_until >= from_day)
        .order_by(Hold.ready_until, Hold.id)
    )
    rows = (await session.execute(statement)).mappings()
    return [CopyPutAside(**row) for row in rows]


def _looked_up(column: Any, condition: ColumnElement[bool]) -> Any:
    """`column` of the one row `condition` names, as a subquery PostgreSQL cannot turn into
    a join (so it stays a primary-key lookup per row)."""
    return select(column).where(condition).scalar_subquery().label(column.key)


def overdue_borrowing(due: DueBorrowing, *, today: date) -> str:
    late = (today - due.expected_return_date).days
    if late > 0:
        status = f"⏰ Overdue by {days(late)}"
    elif late == 0:
        status = "⏰ Due today"
    else:
        status = "🔔 Due tomorrow"
    return (
        f"{status}: borrowing #{due.id}\n"
        f"{book_line(due.title, due.author)}\n"
        f"Member: {due.email}, due {due.expected_return_date:%Y-%m-%d}"
    )


def copies_put_aside(copies: Sequence[CopyPutAside], *, today: date) -> str:
    lines = [
        f"• «{copy.title}» for {copy.email} until {copy.ready_until:%Y-%m-%d}"
        + (" (last day)" if copy.ready_until == today else "")
        for copy in copies
    ]
    return "📦 Copies put aside for holds:\n" + "\n".join(lines)


async def send_overdue_report(ctx: dict[str, Any]) -> str:
    """Once per library day: one message per active borrowing due tomorrow or earlier, and
    one listing the copies to keep put aside for holds (those whose last day is today first)."""
    settings = ctx["settings"]
    today = clock.today(settings.timezone)
    if clock.now().astimezone(settings.timezone).time() < settings.OVERDUE_REPORT_TIME:
        return "too early"  # started before the report time: the cron will run it
    async with UnitOfWork(ctx["db"], ctx["redis"]).write() as session:
        reports = NotificationRepository(session)
        if not await reports.start_overdue_report(today):
            return "already sent"
        notifications = NotificationService(session)
        due = 0
        # Still one transaction (the report is sent whole or not at all, once a day), but
        # read in chunks: memory holds one chunk, whatever the number of loans due.
        async for chunk in _chunks_due_by(session, today + timedelta(days=1)):
            for row in chunk:
                await notifications.record("overdue", overdue_borrowing(row, today=today))
            due += len(chunk)
        if not due:
            await notifications.record("overdue", NO_OVERDUE)
        put_aside = await holds_put_aside(session, from_day=today)
        if put_aside:
            await notifications.record("holds", copies_put_aside(put_aside, today=today))
        await reports.finish_overdue_report(today, due)
    logger.info("report for %s: %d borrowing(s), %d hold(s)", today, due, len(put_aside))
    return f"{due} borrowing(s), {len(put_aside)} hold(s)"
