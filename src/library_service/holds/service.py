from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.books.errors import BookNotFoundError
from library_service.books.repository import BookRepository
from library_service.borrowings.repository import BorrowingRepository
from library_service.circulation import copies
from library_service.core import clock
from library_service.core.audit import AuditAction, AuditTarget, AuditTrail, Target
from library_service.core.config import Settings
from library_service.core.db import UnitOfWork
from library_service.core.errors import found
from library_service.core.pagination import PageParams
from library_service.holds import rules
from library_service.holds.errors import AlreadyOnHoldError, HoldNotFoundError
from library_service.holds.repository import HoldRepository, HoldView
from library_service.holds.schemas import HoldFilters
from library_service.models import Book, Hold, HoldStatus
from library_service.notifications import messages, notices
from library_service.notifications.service import (
    MemberNoticeService,
    NotificationService,
    Recipient,
)
from library_service.users.schemas import AuthUser

logger = logging.getLogger(__name__)


class HoldService:
    def __init__(self, uow: UnitOfWork, *, settings: Settings) -> None:
        self.uow = uow
        self.settings = settings

    def _today(self) -> date:
        return clock.today(self.settings.timezone)

    async def list_holds(
        self, user: AuthUser, filters: HoldFilters, page: PageParams
    ) -> tuple[Sequence[HoldView], int]:
        async with self.uow.read() as session:
            return await HoldRepository(session).list(
                user.restrict(filters),
                page,
                estimate_ttl=self.settings.ESTIMATED_COUNT_CACHE_SECONDS,
            )

    async def get_hold(self, hold_id: int, user: AuthUser) -> HoldView:
        async with self.uow.read() as session:
            view = await HoldRepository(session).view(hold_id, user_id=user.restricted_to)
        return found(view, HoldNotFoundError)

    async def place(self, user: AuthUser, book_id: int) -> HoldView:
        """Join a book's queue (no copy may be on the shelf)."""
        try:
            async with self.uow.write() as session:
                # Lock order everywhere: member, then borrowing, then book, then holds.
                await BorrowingRepository(session).lock_member(user.id)
                book = found(
                    await BookRepository(session).get(book_id, for_update=True), BookNotFoundError
                )
                facts = await HoldRepository(session).placement_facts(user.id, book_id)
                standing = await BorrowingRepository(session).standing(user.id)
                rules.check_can_place(book, facts, standing, self.settings)
                hold = await HoldRepository(session).add(Hold(book_id=book_id, user_id=user.id))
        except IntegrityError as exc:  # the one-open-hold index, should the lock be bypassed
            raise AlreadyOnHoldError from exc
        return await self.get_hold(hold.id, user)

    async def cancel(self, hold_id: int, user: AuthUser) -> HoldView:
        """Leave the queue; a copy put aside for the hold goes to the next in line."""
        found = await self.get_hold(hold_id, user)
        async with self.uow.write() as session:
            book, hold = await self._lock(session, found.book.id, hold_id)
            rules.check_can_cancel(hold)
            was = hold.status
            copies.close(hold, HoldStatus.CANCELLED)
            if was == HoldStatus.READY.value:
                await copies.release_copies(
                    session, book, today=self._today(), settings=self.settings
                )
            if user.is_staff:
                await AuditTrail(session).record(
                    user.id,
                    AuditAction.HOLD_CANCEL,
                    Target(AuditTarget.HOLD, hold.id, hold.user_id, hold.book_id),
                    changes={"status": [was, HoldStatus.CANCELLED.value]},
                )
        return await self.get_hold(hold_id, user)

    async def expire_uncollected(self, *, limit: int) -> int:
        """Worker job: READY holds past their pickup day expire; their copies move on.
        Each in a transaction of its own."""
        today = self._today()
        async with self.uow.read() as session:
            due = await HoldRepository(session).uncollected(today=today, limit=limit)
        expired = 0
        for hold_id in due:
            expired += await self._expire(hold_id, today)
        return expired

    async def _expire(self, hold_id: int, today: date) -> bool:
        async with self.uow.read() as session:
            found = await HoldRepository(session).get(hold_id)
        if found is None:
            return False
        async with self.uow.write() as session:
            book, hold = await self._lock(session, found.book_id, hold_id)
            if not rules.is_uncollected(hold, today=today):
                return False  # collected or cancelled meanwhile
            copies.close(hold, HoldStatus.EXPIRED)
            passed = await copies.release_copies(session, book, today=today, settings=self.settings)
            next_member = passed[0].user.email if passed else None
            text = messages.hold_expired(hold, book, hold.user.email, passed_to=next_member)
            await NotificationService(session).record("hold_expired", text)
            assert hold.ready_until is not None
            draft = notices.hold_expired(
                book_id=book.id, title=book.title, author=book.author, until=hold.ready_until
            )
            recipient = Recipient(hold.user_id, hold.user.email)
            await MemberNoticeService(session).record(recipient, draft)
        return True

    async def _lock(self, session: AsyncSession, book_id: int, hold_id: int) -> tuple[Book, Hold]:
        """The book's row lock, then the hold read afresh under it."""
        book = await BookRepository(session).get(book_id, for_update=True)
        hold = await HoldRepository(session).get(hold_id, for_update=True, with_member=True)
        assert book is not None
        assert hold is not None
        return book, hold
