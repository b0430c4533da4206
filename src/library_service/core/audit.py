"""The record of staff actions: every change staff make writes one append-only row, in the
transaction of the change itself, so the record and the change commit (or fail) together.

Kept in the kernel, beside the clock and the unit of work, because every domain that staff
change writes to it (the outbox included); reading the record is the `audit` domain's.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.models import AuditEntry, table_of


class AuditAction(enum.StrEnum):
    BOOK_CREATE = "book.create"
    BOOK_UPDATE = "book.update"
    BOOK_WITHDRAW = "book.withdraw"
    BOOK_REINSTATE = "book.reinstate"
    BOOK_DELETE = "book.delete"
    MEMBER_UPDATE = "member.update"
    MEMBER_ACTIVATE = "member.activate"
    MEMBER_DEACTIVATE = "member.deactivate"
    MEMBER_GRANT_STAFF = "member.grant_staff"
    MEMBER_REVOKE_STAFF = "member.revoke_staff"
    BORROWING_CREATE = "borrowing.create"
    BORROWING_EXTEND = "borrowing.extend"
    BORROWING_RETURN = "borrowing.return"
    HOLD_CANCEL = "hold.cancel"
    PAYMENT_CASH = "payment.cash"
    PAYMENT_WAIVE = "payment.waive"
    PAYMENT_RENEW = "payment.renew"
    MESSAGE_SEND_AGAIN = "message.send_again"
    NOTICE_SEND_AGAIN = "notice.send_again"


class AuditTarget(enum.StrEnum):
    BOOK = "book"
    MEMBER = "member"
    BORROWING = "borrowing"
    HOLD = "hold"
    PAYMENT = "payment"
    MESSAGE = "message"
    NOTICE = "notice"


@dataclass(frozen=True, slots=True)
class Target:
    """What an action changed, and the member and book it concerns (for their pages)."""

    type: AuditTarget
    id: int
    member_id: int | None = None
    book_id: int | None = None


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """{field: [before, after]} for each field of `after` whose value changed."""
    return {
        field: [_json(before.get(field)), _json(value)]
        for field, value in after.items()
        if before.get(field) != value
    }


def snapshot(obj: Any, fields: Iterable[str]) -> dict[str, Any]:
    """The values of `fields` on `obj` now (to diff against after the change)."""
    return {field: getattr(obj, field) for field in fields}


class AuditTrail:
    """Writes in the caller's transaction; the database refuses to change a row later."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self,
        actor_id: int,
        action: AuditAction,
        target: Target,
        *,
        changes: Mapping[str, list[Any]] | None = None,
        reason: str | None = None,
    ) -> None:
        await self.session.execute(
            insert(table_of(AuditEntry)).values(
                actor_id=actor_id,
                action=action.value,
                target_type=target.type.value,
                target_id=target.id,
                member_id=target.member_id,
                book_id=target.book_id,
                changes=dict(changes or {}),
                reason=reason,
            )
        )
