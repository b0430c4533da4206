from __future__ import annotations

from library_service.admin.repository import DeskFigures, DeskRepository
from library_service.core import clock
from library_service.core.config import Settings
from library_service.core.db import UnitOfWork


class DeskService:
    def __init__(self, uow: UnitOfWork, *, settings: Settings) -> None:
        self.uow = uow
        self.settings = settings

    async def figures(self) -> DeskFigures:
        """What a librarian wants to see first: loans out and overdue, unpaid fines,
        staff messages that could not be delivered."""
        today = clock.today(self.settings.timezone)
        async with self.uow.read() as session:
            return await DeskRepository(session).figures(today=today)
