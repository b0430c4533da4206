from __future__ import annotations

from collections.abc import Sequence

from library_service.admin.repository import DeskFigures, DeskRepository, HoldLine, LoanLine, Owed
from library_service.core import clock
from library_service.core.config import Settings
from library_service.core.db import UnitOfWork


class DeskService:
    """What the desk's pages read beside the services' own lists."""

    def __init__(self, uow: UnitOfWork, *, settings: Settings) -> None:
        self.uow = uow
        self.settings = settings

    async def figures(self) -> DeskFigures:
        """What a librarian wants to see first: loans out, due today and overdue, holds to
        hand out, what is owed (fees and fines apart), cash taken today, staff messages that
        could not be delivered."""
        zone = self.settings.timezone
        today = clock.today(zone)
        async with self.uow.read() as session:
            return await DeskRepository(session).figures(
                today=today, day_began=clock.start_of(today, zone)
            )

    async def owed(self, user_id: int) -> Owed:
        async with self.uow.read() as session:
            return await DeskRepository(session).owed(user_id)

    async def holds_of_member(self, user_id: int) -> Sequence[HoldLine]:
        async with self.uow.read() as session:
            return await DeskRepository(session).holds(user_id=user_id)

    async def queue_of_book(self, book_id: int) -> Sequence[HoldLine]:
        """The book's open holds, in queue order: READY ones (copies put aside), then WAITING."""
        async with self.uow.read() as session:
            return await DeskRepository(session).holds(book_id=book_id, open_only=True)

    async def loans_of_book(self, book_id: int) -> Sequence[LoanLine]:
        async with self.uow.read() as session:
            return await DeskRepository(session).loans_of_book(book_id)
