from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.audit.schemas import AuditFilters
from library_service.core.pagination import PageParams, fetch_page
from library_service.models import AuditEntry, User


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    created_at: datetime
    actor_id: int
    actor_email: str
    action: str
    target_type: str
    target_id: int
    member_id: int | None
    book_id: int | None
    changes: dict[str, Any]
    reason: str | None


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list(
        self,
        filters: AuditFilters,
        page: PageParams,
        *,
        since: datetime | None = None,
        before: datetime | None = None,
    ) -> tuple[Sequence[AuditRow], int]:
        """Newest first; `since` and `before` bound `created_at` (half-open)."""
        conditions: list[Any] = []
        for column, value in (
            (AuditEntry.actor_id, filters.actor_id),
            (AuditEntry.action, filters.action),
            (AuditEntry.target_type, filters.target_type),
            (AuditEntry.target_id, filters.target_id),
            (AuditEntry.member_id, filters.member_id),
            (AuditEntry.book_id, filters.book_id),
        ):
            if value is not None:
                conditions.append(column == value)
        if since is not None:
            conditions.append(AuditEntry.created_at >= since)
        if before is not None:
            conditions.append(AuditEntry.created_at < before)
        statement = (
            select(AuditEntry, User.email.label("actor_email"))
            .join(User, User.id == AuditEntry.actor_id)
            .where(*conditions)
            .order_by(AuditEntry.id.desc())
        )
        rows, total = await fetch_page(self.session, statement, page)
        return [_row(row.AuditEntry, row.actor_email) for row in rows], total


def _row(entry: AuditEntry, actor_email: str) -> AuditRow:
    return AuditRow(
        id=entry.id,
        created_at=entry.created_at,
        actor_id=entry.actor_id,
        actor_email=actor_email,
        action=entry.action,
        target_type=entry.target_type,
        target_id=entry.target_id,
        member_id=entry.member_id,
        book_id=entry.book_id,
        changes=entry.changes,
        reason=entry.reason,
    )
