from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Identity,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from library_service.models.base import Base


class NotificationStatus(enum.StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"


class Notification(Base):
    """A staff message, written in the same transaction as the event it reports (outbox)."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint("status IN ('PENDING', 'SENT', 'FAILED')", name="status_valid"),
        Index(
            "ix_notifications_pending_next_attempt_at",
            "next_attempt_at",
            postgresql_where="status = 'PENDING'",
        ),
        # The relay sweep takes pending messages in id order.
        Index("ix_notifications_pending_id", "id", postgresql_where="status = 'PENDING'"),
        # /metrics counts the FAILED messages on every scrape.
        Index("ix_notifications_failed_id", "id", postgresql_where="status = 'FAILED'"),
        # The admin's search: the text or the last error contains the term (ILIKE '%…%').
        *(
            Index(
                f"ix_notifications_{column}_trgm",
                column,
                postgresql_using="gin",
                postgresql_ops={column: "gin_trgm_ops"},
            )
            for column in ("text", "last_error")
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(
        String(8), nullable=False, server_default=NotificationStatus.PENDING.value
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # The sweep re-enqueues a pending message from this instant on (retry back-off).
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    # A sender holds the message until then; past it (a crashed worker) anyone may resend.
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OverdueReport(Base):
    """One row per library day on which the overdue report was written; makes it run once."""

    __tablename__ = "overdue_reports"

    report_date: Mapped[date] = mapped_column(Date, primary_key=True)
    borrowings_count: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
