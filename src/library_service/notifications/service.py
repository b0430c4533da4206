from __future__ import annotations

from sqlalchemy import bindparam, insert
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.core.audit import AuditAction, AuditTarget, AuditTrail, Target
from library_service.core.db import UnitOfWork
from library_service.core.jobs import defer_job
from library_service.models import Notification
from library_service.notifications import jobs
from library_service.notifications.errors import (
    NotificationNotFailedError,
    NotificationNotFoundError,
)
from library_service.notifications.repository import NotificationRepository

# Written by every borrowing, return and payment: built once (see core/db.py).
_INSERT = (
    insert(Notification)
    .values(kind=bindparam("kind"), text=bindparam("text"))
    .returning(Notification.id)
)


class NotificationService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, kind: str, text: str) -> int:
        """Write a staff message in the caller's transaction; it is queued once that commits."""
        parameters = {"kind": kind, "text": text}
        notification_id: int = (await self.session.execute(_INSERT, parameters)).scalar_one()
        self._deliver_after_commit(notification_id)
        return notification_id

    async def send_again(self, notification_id: int) -> None:
        """Put a FAILED message back in the outbox with a fresh start (its attempts counted
        from zero again), queued for delivery once the caller's transaction commits."""
        repository = NotificationRepository(self.session)
        if not await repository.restart_failed(notification_id):
            if await repository.status_of(notification_id) is None:
                raise NotificationNotFoundError
            raise NotificationNotFailedError
        self._deliver_after_commit(notification_id)

    def _deliver_after_commit(self, notification_id: int) -> None:
        defer_job(
            self.session,
            jobs.DELIVER,
            notification_id,
            job_id=jobs.delivery_job_id(notification_id),
        )


class StaffMessageService:
    """The outbox as staff handle it: a message that failed is sent again."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    async def send_again(self, notification_id: int, *, staff_id: int) -> None:
        async with self.uow.write() as session:
            await NotificationService(session).send_again(notification_id)
            await AuditTrail(session).record(
                staff_id,
                AuditAction.MESSAGE_SEND_AGAIN,
                Target(AuditTarget.MESSAGE, notification_id),
                changes={"status": ["FAILED", "PENDING"]},
            )
