"""The queries the copies' moves need: a book's queue, its open holds, one hold."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from library_service.models import OPEN_HOLD_STATUSES, Hold, HoldStatus

WAITING = HoldStatus.WAITING.value
# Asked by every return (is anyone waiting for the copy?): built once (see core/db.py).
_OLDEST_WAITING = (
    select(Hold)
    .options(joinedload(Hold.user, innerjoin=True))
    .where(Hold.book_id == bindparam("book_id"), Hold.status == WAITING)
    .order_by(Hold.id)
    .limit(bindparam("limit"))
)


class QueueRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def hold(self, hold_id: int) -> Hold | None:
        return await self.session.get(Hold, hold_id)

    async def oldest_waiting(self, book_id: int, *, limit: int) -> Sequence[Hold]:
        """The first `limit` holds of a book's queue, with their members (call it under the
        book's row lock: every change to a book's holds happens under it)."""
        parameters = {"book_id": book_id, "limit": limit}
        return (await self.session.scalars(_OLDEST_WAITING, parameters)).all()

    async def open_for_book(self, book_id: int) -> Sequence[Hold]:
        statement = (
            select(Hold)
            .options(joinedload(Hold.user, innerjoin=True))
            .where(Hold.book_id == book_id, Hold.status.in_(OPEN_HOLD_STATUSES))
            .order_by(Hold.id)
        )
        return (await self.session.scalars(statement)).all()
