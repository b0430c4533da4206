from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from library_service.models.base import Base

if TYPE_CHECKING:
    from library_service.models.book import Book
    from library_service.models.user import User


class HoldStatus(enum.StrEnum):
    WAITING = "WAITING"  # in the book's queue
    READY = "READY"  # a copy is put aside for the member until `ready_until`
    FULFILLED = "FULFILLED"  # the member borrowed the copy
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"  # not collected in time


OPEN_HOLD_STATUSES = (HoldStatus.WAITING.value, HoldStatus.READY.value)


class Hold(Base):
    """A member's place in a book's queue; every change happens under the book's row lock."""

    __tablename__ = "holds"
    __table_args__ = (
        CheckConstraint(
            "status IN ('WAITING', 'READY', 'FULFILLED', 'CANCELLED', 'EXPIRED')",
            name="status_valid",
        ),
        CheckConstraint(
            "status <> 'READY' OR ready_until IS NOT NULL", name="ready_has_ready_until"
        ),
        Index("ix_holds_user_id_id", "user_id", "id"),
        # The queue of a book, oldest first.
        Index(
            "ix_holds_waiting_book_id_id", "book_id", "id", postgresql_where="status = 'WAITING'"
        ),
        # The expiry sweep, in its order.
        Index(
            "ix_holds_ready_ready_until_id",
            "ready_until",
            "id",
            postgresql_where="status = 'READY'",
        ),
        # Staff's ?book_id= and ?status=, newest first.
        Index("ix_holds_book_id_id", "book_id", "id"),
        Index("ix_holds_status_id", "status", "id"),
        # One open hold per member and book.
        Index(
            "uq_holds_open_user_id_book_id",
            "user_id",
            "book_id",
            unique=True,
            postgresql_where=text("status IN ('WAITING', 'READY')"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    book_id: Mapped[int] = mapped_column(
        ForeignKey("books.id", ondelete="RESTRICT"), nullable=False
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), nullable=False
    )
    status: Mapped[str] = mapped_column(
        String(9), nullable=False, server_default=HoldStatus.WAITING.value
    )
    ready_until: Mapped[date | None] = mapped_column(Date)
    borrowing_id: Mapped[int | None] = mapped_column(
        ForeignKey("borrowings.id", ondelete="RESTRICT")
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    book: Mapped[Book] = relationship(lazy="raise")
    user: Mapped[User] = relationship(lazy="raise")
