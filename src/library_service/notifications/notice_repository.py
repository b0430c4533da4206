"""Member notices: written with their event, sent under a lease, listed and read by members."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cache
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from library_service.core.clock import now
from library_service.core.db import AnyRow
from library_service.core.pagination import PageParams, fetch_page
from library_service.models import MemberNotice, NoticeStatus, table_of
from library_service.notifications import outbox

_notices = table_of(MemberNotice)
Rows = Mapping[str, Any] | Sequence[Mapping[str, Any]]


def _insert(values: Rows) -> ReturningInsert[tuple[int, str]]:
    """Notices not already recorded under their dedupe_key; (id, status) of each written."""
    return (
        pg_insert(_notices)
        .values(values)
        .on_conflict_do_nothing(
            index_elements=[_notices.c.dedupe_key],
            index_where=_notices.c.dedupe_key.is_not(None),
        )
        .returning(_notices.c.id, _notices.c.status)
    )


@cache
def _insert_one(columns: tuple[str, ...]) -> ReturningInsert[tuple[int, str]]:
    """One notice (a payment's receipt, a fine: the frequent case), its statement built
    once (see core/db.py)."""
    return _insert({column: bindparam(column) for column in columns})


class NoticeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, rows: Sequence[dict[str, Any]]) -> list[tuple[int, str]]:
        """Insert notices; a row whose dedupe_key exists already is left out. The (id,
        status) of each row written."""
        if not rows:
            return []
        if len(rows) == 1:
            result = await self.session.execute(_insert_one(tuple(rows[0])), rows[0])
        else:
            result = await self.session.execute(_insert(list(rows)))
        return [(row.id, row.status) for row in result]

    async def list(
        self, user_id: int, *, unread: bool, page: PageParams
    ) -> tuple[Sequence[MemberNotice], int]:
        statement = select(MemberNotice).where(MemberNotice.user_id == user_id)
        if unread:
            statement = statement.where(MemberNotice.read_at.is_(None))
        statement = statement.order_by(MemberNotice.id.desc())
        rows, total = await fetch_page(self.session, statement, page)
        return [row.MemberNotice for row in rows], total

    async def unread_count(self, user_id: int) -> int:
        statement = select(func.count()).where(
            MemberNotice.user_id == user_id, MemberNotice.read_at.is_(None)
        )
        return int(await self.session.scalar(statement) or 0)

    async def mark_read(self, user_id: int, notice_id: int) -> MemberNotice | None:
        """Read (once: a second call keeps the first time); None if not the member's."""
        statement = (
            update(MemberNotice)
            .where(MemberNotice.id == notice_id, MemberNotice.user_id == user_id)
            .values(read_at=func.coalesce(MemberNotice.read_at, now()))
            .returning(MemberNotice)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def mark_all_read(self, user_id: int) -> int:
        statement = (
            update(MemberNotice)
            .where(MemberNotice.user_id == user_id, MemberNotice.read_at.is_(None))
            .values(read_at=now())
        )
        result = await self.session.execute(statement)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def status_of(self, notice_id: int) -> str | None:
        statement = select(MemberNotice.status).where(MemberNotice.id == notice_id)
        status: str | None = await self.session.scalar(statement)
        return status

    async def restart_failed(self, notice_id: int) -> int | None:
        """Give a FAILED notice a fresh start; its member's id, or None unless it was FAILED."""
        statement = outbox.restart_failed(MemberNotice, notice_id, returning=MemberNotice.user_id)
        member_id: int | None = await self.session.scalar(statement)
        return member_id

    async def due_for_relay(self, *, limit: int) -> Sequence[int]:
        return (await self.session.scalars(outbox.due_for_relay(MemberNotice, limit=limit))).all()


# A sender's two statements, built once (outbox.py).
_CLAIM = outbox.claim(
    MemberNotice,
    MemberNotice.id,
    MemberNotice.kind,
    MemberNotice.subject,
    MemberNotice.body,
    MemberNotice.facts,
    MemberNotice.link_path,
    MemberNotice.frontend_path,
    MemberNotice.link_label,
    MemberNotice.secret,
    MemberNotice.to_address,
    MemberNotice.attempts,
)
# The link's token is out: nothing here can make it again.
_MARK_SENT = outbox.mark_sent(MemberNotice, secret=None)


class NoticeDeliveryRepository:
    """Sending one notice's e-mail: claim it under a lease, then settle it; each step one
    statement on an autocommit connection."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def claim(
        self, notice_id: int, *, lease: timedelta, give_up_after: timedelta
    ) -> AnyRow | None:
        parameters = {"row_id": notice_id, "lease": lease, "give_up_after": give_up_after}
        return (await self.connection.execute(_CLAIM, parameters)).first()

    async def mark_sent(self, notice_id: int) -> None:
        await self.connection.execute(_MARK_SENT, {"row_id": notice_id})

    async def mark_not_emailed(self, notice_id: int, reason: str) -> None:
        """SKIPPED, with the reason: no e-mail went out (the notice stays in the app)."""
        await self.connection.execute(
            update(MemberNotice)
            .where(MemberNotice.id == notice_id)
            .values(
                status=NoticeStatus.SKIPPED.value,
                locked_until=None,
                last_error=reason,
                secret=None,  # no e-mail will carry the link
            )
        )

    async def schedule_retry(self, notice_id: int, *, delay: timedelta, error: str) -> None:
        await self.connection.execute(
            outbox.schedule_retry(MemberNotice, notice_id, delay=delay, error=error)
        )

    async def mark_failed(self, notice_id: int, *, error: str) -> None:
        await self.connection.execute(outbox.mark_failed(MemberNotice, notice_id, error=error))
