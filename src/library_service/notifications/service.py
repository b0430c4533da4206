from __future__ import annotations

from sqlalchemy import bindparam, insert
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.core.jobs import defer_job
from library_service.models import Notification
from library_service.notifications import jobs

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
        defer_job(
            self.session,
            jobs.DELIVER,
            notification_id,
            job_id=jobs.delivery_job_id(notification_id),
        )
        return notification_id
