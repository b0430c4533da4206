from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, insert
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.core.audit import AuditAction, AuditTarget, AuditTrail, Target
from library_service.core.db import UnitOfWork, Writes, with_writes
from library_service.core.jobs import defer_job
from library_service.core.pagination import PageParams
from library_service.models import MemberNotice, NoticeStatus, Notification, table_of
from library_service.notifications import jobs, notices
from library_service.notifications.errors import (
    NoticeNotFailedError,
    NoticeNotFoundError,
    NotificationNotFailedError,
    NotificationNotFoundError,
)
from library_service.notifications.notice_repository import NoticeRepository
from library_service.notifications.notices import Draft
from library_service.notifications.repository import NotificationRepository

# Written by every borrowing, return and payment: built once (see core/db.py).
_notifications = table_of(Notification)
_INSERT = (
    insert(_notifications)
    .values(kind=bindparam("kind"), text=bindparam("text"))
    .returning(_notifications.c.id)
)


class NotificationService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, kind: str, text: str, *, along_with: Writes | None = None) -> int:
        """Write a staff message in the caller's transaction; it is queued once that commits.
        `along_with`: the caller's own writes, which the message reports, sent in the same
        statement (one round trip for the change and its message)."""
        statement, parameters = _INSERT, {"kind": kind, "text": text}
        if along_with is not None:
            statement = with_writes(_INSERT, along_with.ctes)
            parameters |= along_with.parameters
        notification_id: int = (await self.session.execute(statement, parameters)).scalar_one()
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


@dataclass(frozen=True, slots=True)
class Recipient:
    """Whom a notice is for: their account, their address, and whether they take reminder
    e-mails (`email_reminders`)."""

    user_id: int
    email: str | None
    email_reminders: bool = True


def _row(recipient: Recipient, draft: Draft, sealed_secret: str | None) -> dict[str, Any]:
    emailed = recipient.email is not None and (recipient.email_reminders or not draft.is_reminder)
    link = draft.link
    return {
        "user_id": recipient.user_id,
        "kind": draft.kind,
        "subject": draft.subject,
        "body": draft.body,
        "facts": [list(fact) for fact in draft.facts],
        "link_path": link.path if link else None,
        "frontend_path": link.frontend if link else None,
        "link_label": link.label if link else None,
        "secret": sealed_secret,
        "to_address": recipient.email if emailed else None,
        "status": NoticeStatus.PENDING.value if emailed else NoticeStatus.SKIPPED.value,
        "dedupe_key": draft.dedupe_key,
    }


class MemberNoticeService:
    """Record what a member is told, in the caller's transaction: the notice is in their app
    at once, and its e-mail is queued once the transaction commits (outbox)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self, recipient: Recipient, draft: Draft, *, sealed_secret: str | None = None
    ) -> int | None:
        """The notice's id; None if one with its dedupe_key was recorded before."""
        ids = await self.record_many([(recipient, draft)], sealed_secret=sealed_secret)
        return ids[0] if ids else None

    async def record_many(
        self,
        notices: Sequence[tuple[Recipient, Draft]],
        *,
        sealed_secret: str | None = None,
        one_job: bool = False,
    ) -> list[int]:
        """Several notices in one statement (a sweep's batch); those already recorded under
        their dedupe_key are left out. The ids written. `one_job`: their e-mails go out
        through a single job (queuing one job per notice costs a sweep more than the
        sending)."""
        rows = [_row(recipient, draft, sealed_secret) for recipient, draft in notices]
        written = await NoticeRepository(self.session).add(rows)
        pending = [notice_id for notice_id, status in written if status == NoticeStatus.PENDING]
        if one_job and pending:
            defer_job(self.session, jobs.DELIVER_NOTICES, pending)
        else:
            for notice_id in pending:
                self._deliver_after_commit(notice_id)
        return [notice_id for notice_id, _ in written]

    async def record_payment_link(
        self,
        recipient: Recipient,
        *,
        payment_id: int,
        title: str,
        amount: Decimal,
        what: str,
        checkout_url: str,
    ) -> int | None:
        """E-mail a payment's checkout link to its member (and show it in their app): what
        the desk's "send the payment link" records."""
        draft = notices.payment_link(
            payment_id=payment_id, title=title, amount=amount, what=what, checkout_url=checkout_url
        )
        return await self.record(recipient, draft)

    async def send_again(self, notice_id: int) -> int:
        """Put a FAILED notice back in the outbox (attempts from zero); its member's id."""
        repository = NoticeRepository(self.session)
        member_id = await repository.restart_failed(notice_id)
        if member_id is None:
            if await repository.status_of(notice_id) is None:
                raise NoticeNotFoundError
            raise NoticeNotFailedError
        self._deliver_after_commit(notice_id)
        return member_id

    def _deliver_after_commit(self, notice_id: int) -> None:
        defer_job(
            self.session, jobs.DELIVER_NOTICE, notice_id, job_id=jobs.notice_job_id(notice_id)
        )


class MemberInbox:
    """A member's notices in the app: listed newest first, counted unread, marked read."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    async def list(
        self, user_id: int, *, unread: bool, page: PageParams
    ) -> tuple[Sequence[MemberNotice], int]:
        async with self.uow.read() as session:
            return await NoticeRepository(session).list(user_id, unread=unread, page=page)

    async def unread_count(self, user_id: int) -> int:
        async with self.uow.read() as session:
            return await NoticeRepository(session).unread_count(user_id)

    async def mark_read(self, user_id: int, notice_id: int) -> MemberNotice:
        async with self.uow.write() as session:
            notice = await NoticeRepository(session).mark_read(user_id, notice_id)
        if notice is None:
            raise NoticeNotFoundError
        return notice

    async def mark_all_read(self, user_id: int) -> int:
        async with self.uow.write() as session:
            return await NoticeRepository(session).mark_all_read(user_id)

    async def send_again(self, notice_id: int, *, staff_id: int) -> None:
        """Staff: a FAILED notice's e-mail goes out again, on record as their doing."""
        async with self.uow.write() as session:
            member_id = await MemberNoticeService(session).send_again(notice_id)
            await AuditTrail(session).record(
                staff_id,
                AuditAction.NOTICE_SEND_AGAIN,
                Target(AuditTarget.NOTICE, notice_id, member_id=member_id),
                changes={"status": ["FAILED", "PENDING"]},
            )
