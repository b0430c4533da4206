from __future__ import annotations

from collections.abc import Sequence

from library_service.audit.repository import AuditRepository, AuditRow
from library_service.audit.schemas import AuditFilters
from library_service.core import clock
from library_service.core.config import Settings
from library_service.core.db import UnitOfWork
from library_service.core.pagination import PageParams


class AuditService:
    """The record of staff actions, as staff read it (it is written by each change)."""

    def __init__(self, uow: UnitOfWork, *, settings: Settings) -> None:
        self.uow = uow
        self.settings = settings

    async def list_entries(
        self, filters: AuditFilters, page: PageParams
    ) -> tuple[Sequence[AuditRow], int]:
        since, before = clock.library_days(filters.since, filters.until, self.settings.timezone)
        async with self.uow.read() as session:
            return await AuditRepository(session).list(filters, page, since=since, before=before)
