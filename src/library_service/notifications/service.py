from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from library_service.core.jobs import defer_job
from library_service.models import Notification

DELIVER_JOB = "deliver_notification"


def delivery_job_id(notification_id: int) -> str:
    """One queued delivery per message: arq refuses a second job with the same id."""
    return f"notification:{notification_id}"


class NotificationService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, kind: str, text: str) -> Notification:
        """Write a staff message in the caller's transaction; it is queued once that commits."""
        notification = Notification(kind=kind, text=text)
        self.session.add(notification)
        await self.session.flush()
        defer_job(
            self.session, DELIVER_JOB, notification.id, job_id=delivery_job_id(notification.id)
        )
        return notification
