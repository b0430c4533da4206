from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Identity,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from library_service.models.base import Base


class NoticeStatus(enum.StrEnum):
    """The e-mail's state; every notice is in the app whatever it is."""

    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"  # not e-mailed: a reminder the member opted out of, or no address


class MemberNotice(Base):
    """What a member is told (a hold ready, a loan due, a fine, a receipt, their account),
    written in the same transaction as the event; the worker e-mails it (outbox) and the
    app lists it.

    A table of its own rather than rows in `notifications`: it belongs to a member, is read
    and marked read by them, carries a link and an address, and some kinds must be written
    once per loan and day; the staff outbox's claim stays the two statements it is.
    """

    __tablename__ = "member_notices"
    __table_args__ = (
        CheckConstraint("status IN ('PENDING', 'SENT', 'FAILED', 'SKIPPED')", name="status_valid"),
        # A member's list, newest first.
        Index("ix_member_notices_user_id_id", "user_id", "id"),
        # The unread count an app polls: one index range, however long the history.
        Index("ix_member_notices_unread_user_id", "user_id", postgresql_where="read_at IS NULL"),
        Index(
            "ix_member_notices_pending_next_attempt_at",
            "next_attempt_at",
            postgresql_where="status = 'PENDING'",
        ),
        Index("ix_member_notices_failed_id", "id", postgresql_where="status = 'FAILED'"),
        # The daily reminders: one notice per loan, kind and day, however often a sweep runs.
        Index(
            "uq_member_notices_dedupe_key",
            "dedupe_key",
            unique=True,
            postgresql_where="dedupe_key IS NOT NULL",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # No foreign key, on purpose: notices are written under other rows' locks (a book's, a
    # hold's), and the key-share lock an FK check takes on the member's row would wait on a
    # borrowing of theirs that holds it FOR UPDATE while waiting for the same book: a
    # deadlock. Accounts are never deleted, so the id always names one.
    user_id: Mapped[int] = mapped_column(Integer, nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    subject: Mapped[str] = mapped_column(Text, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    # [[label, value], …]: the facts the e-mail lists (amount, due date, …).
    facts: Mapped[list[Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'[]'::jsonb")
    )
    # Where the notice's button leads: a path of the API's own (or an absolute URL, such as
    # Stripe's checkout page), and the path under FRONTEND_URL when one is set.
    link_path: Mapped[str | None] = mapped_column(Text)
    frontend_path: Mapped[str | None] = mapped_column(Text)
    link_label: Mapped[str | None] = mapped_column(String(64))
    # A one-time token for the link (a password link), encrypted with SECRET_KEY; erased once
    # the e-mail is out. Its account keeps only the token's hash.
    secret: Mapped[str | None] = mapped_column(Text)
    to_address: Mapped[str | None] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(
        String(8), nullable=False, server_default=NoticeStatus.PENDING.value
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(String(96))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
