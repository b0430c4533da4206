"""The statements both outboxes share: staff messages (`notifications`) and members' notices
(`member_notices`) have the same life. A row is PENDING until a sender, holding it under a
lease (`locked_until`), settles it: SENT, FAILED with the reason, or PENDING again with a
later `next_attempt_at`. The relay sweep finds a PENDING row whose job was lost, and staff
put a FAILED one back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Interval, Select, Update, bindparam, func, or_, select, update

from library_service.models import MemberNotice, Notification, NotificationStatus

# The two tables, whose delivery columns have the same names and meanings (member_notices
# has one status more, SKIPPED: a notice not to be e-mailed, which no statement here meets).
Outbox = type[Notification] | type[MemberNotice]

PENDING = NotificationStatus.PENDING.value
SENT = NotificationStatus.SENT.value
FAILED = NotificationStatus.FAILED.value


def unleased(table: Outbox) -> ColumnElement[bool]:
    """No sender holds the row: never leased, or its lease has run out."""
    return or_(table.locked_until.is_(None), table.locked_until < func.now())


# A sender's two statements per row, claim and mark_sent, are built once per table with bind
# parameters (`row_id`, `lease`, `give_up_after`), as the API's hot statements are
# (core/db.py): the worker sends each message and notice with them, beside the API.


def claim(table: Outbox, *columns: Any) -> Update:
    """Take the PENDING row `row_id` for sending under a lease of `lease`, unless a sender
    holds it; returns `columns` and whether the row is past the time to give up on it
    (`out_of_time`: older than `give_up_after`)."""
    give_up_after = bindparam("give_up_after", type_=Interval)
    return (
        update(table)
        .where(table.id == bindparam("row_id"), table.status == PENDING, unleased(table))
        .values(locked_until=func.now() + bindparam("lease", type_=Interval))
        .returning(*columns, (table.created_at + give_up_after <= func.now()).label("out_of_time"))
    )


def mark_sent(table: Outbox, **values: Any) -> Update:
    """The row `row_id` SENT, its lease given back, and `values` besides."""
    return (
        update(table)
        .where(table.id == bindparam("row_id"))
        .values(
            status=SENT,
            attempts=table.attempts + 1,
            sent_at=func.now(),
            locked_until=None,
            last_error=None,
            **values,
        )
    )


def due_for_relay(table: Outbox, *, limit: int) -> Select[int]:
    """PENDING rows due a delivery that no sender holds, oldest first, locked with SKIP
    LOCKED so that concurrent sweeps share the work."""
    return (
        select(table.id)
        .where(table.status == PENDING, table.next_attempt_at <= func.now(), unleased(table))
        .order_by(table.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def restart_failed(table: Outbox, row_id: int, *, returning: Any) -> Update:
    """A FAILED row back to PENDING with a fresh start (no attempts, due now); returns
    `returning`, or nothing unless the row was FAILED (one statement, so two members of staff
    pressing at once restart it once)."""
    return (
        update(table)
        .where(table.id == row_id, table.status == FAILED)
        .values(
            status=PENDING,
            attempts=0,
            next_attempt_at=func.now(),
            locked_until=None,
            last_error=None,
        )
        .returning(returning)
    )


def schedule_retry(
    table: Outbox, row_id: int, *, delay: timedelta, error: str, counted: bool = True
) -> Update:
    """Send again after `delay`, the lease given back; an attempt is `counted` unless the
    other side only asked for a pause."""
    return (
        update(table)
        .where(table.id == row_id)
        .values(
            attempts=table.attempts + (1 if counted else 0),
            next_attempt_at=func.now() + delay,
            locked_until=None,
            last_error=error,
        )
    )


def mark_failed(table: Outbox, row_id: int, *, error: str) -> Update:
    """Given up on, with the reason; staff can put it back (`restart_failed`)."""
    return (
        update(table)
        .where(table.id == row_id)
        .values(status=FAILED, attempts=table.attempts + 1, locked_until=None, last_error=error)
    )
