from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Float, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from library_service.core.db import AnyRow
from library_service.models import (
    Book,
    Borrowing,
    Notification,
    NotificationStatus,
    OverdueReport,
    User,
)

PENDING = NotificationStatus.PENDING.value


def _seconds(name: str) -> Any:
    """An interval of the float parameter `name` seconds."""
    return func.make_interval(0, 0, 0, 0, 0, 0, bindparam(name, type_=Float))


# The sender's statements, built once: each message costs two of them (claim, then
# sent/retry/failed), run on a plain autocommit connection without the ORM session.
_CLAIM = (
    update(Notification)
    .where(
        Notification.id == bindparam("notification_id"),
        Notification.status == PENDING,
        (Notification.locked_until.is_(None)) | (Notification.locked_until < func.now()),
    )
    .values(
        attempts=Notification.attempts + 1,
        locked_until=func.now() + _seconds("lease_seconds"),
    )
    .returning(Notification.id, Notification.text, Notification.attempts)
)
_SETTLE = update(Notification).where(Notification.id == bindparam("notification_id"))
_MARK_SENT = _SETTLE.values(
    status=NotificationStatus.SENT.value, sent_at=func.now(), locked_until=None, last_error=None
)
_SCHEDULE_RETRY = _SETTLE.values(
    next_attempt_at=func.now() + _seconds("delay"),
    locked_until=None,
    last_error=bindparam("error"),
)
_MARK_FAILED = _SETTLE.values(
    status=NotificationStatus.FAILED.value, locked_until=None, last_error=bindparam("error")
)


class DeliveryRepository:
    """Sending one message: claim it under a lease, then settle it."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def claim(self, notification_id: int, *, lease_seconds: float) -> AnyRow | None:
        """Take a pending message for sending, unless another sender holds it."""
        parameters = {"notification_id": notification_id, "lease_seconds": lease_seconds}
        return (await self.connection.execute(_CLAIM, parameters)).first()

    async def mark_sent(self, notification_id: int) -> None:
        await self.connection.execute(_MARK_SENT, {"notification_id": notification_id})

    async def schedule_retry(self, notification_id: int, *, delay: float, error: str) -> None:
        parameters = {"notification_id": notification_id, "delay": delay, "error": error}
        await self.connection.execute(_SCHEDULE_RETRY, parameters)

    async def mark_failed(self, notification_id: int, *, error: str) -> None:
        parameters = {"notification_id": notification_id, "error": error}
        await self.connection.execute(_MARK_FAILED, parameters)


class NotificationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def status_of(self, notification_id: int) -> str | None:
        statement = select(Notification.status).where(Notification.id == notification_id)
        status: str | None = await self.session.scalar(statement)
        return status

    async def restart_failed(self, notification_id: int) -> bool:
        """Give a FAILED message a fresh start: PENDING, no attempts, due now; False unless
        it was FAILED (one statement, so two staff members pressing at once restart it once)."""
        statement = (
            update(Notification)
            .where(
                Notification.id == notification_id,
                Notification.status == NotificationStatus.FAILED.value,
            )
            .values(
                status=PENDING,
                attempts=0,
                next_attempt_at=func.now(),
                locked_until=None,
                last_error=None,
            )
            .returning(Notification.id)
        )
        return (await self.session.execute(statement)).first() is not None

    async def due_for_relay(self, *, limit: int) -> Sequence[int]:
        """Pending messages whose delivery job may have been lost (Redis down, worker crash).

        Rows are locked with SKIP LOCKED, so concurrent sweeps share the work.
        """
        statement = (
            select(Notification.id)
            .where(
                Notification.status == PENDING,
                Notification.next_attempt_at <= func.now(),
                (Notification.locked_until.is_(None)) | (Notification.locked_until < func.now()),
            )
            .order_by(Notification.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.scalars(statement)).all()

    async def start_overdue_report(self, report_date: date) -> bool:
        """Claim the report of `report_date`; False if it was already written."""
        statement = (
            pg_insert(OverdueReport)
            .values(report_date=report_date, borrowings_count=0)
            .on_conflict_do_nothing(index_elements=[OverdueReport.report_date])
            .returning(OverdueReport.report_date)
        )
        return (await self.session.execute(statement)).first() is not None

    async def finish_overdue_report(self, report_date: date, count: int) -> None:
        await self.session.execute(
            update(OverdueReport)
            .where(OverdueReport.report_date == report_date)
            .values(borrowings_count=count)
        )

    async def borrowings_due_by(self, last_day: date) -> Sequence[AnyRow]:
        statement = (
            select(
                Borrowing.id,
                Borrowing.expected_return_date,
                User.email,
                Book.title,
                Book.author,
            )
            .join(User, User.id == Borrowing.user_id)
            .join(Book, Book.id == Borrowing.book_id)
            .where(
                Borrowing.actual_return_date.is_(None), Borrowing.expected_return_date <= last_day
            )
            .order_by(Borrowing.expected_return_date, Borrowing.id)
        )
        return (await self.session.execute(statement)).all()
