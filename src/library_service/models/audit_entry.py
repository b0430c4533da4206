from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from library_service.models.base import Base

if TYPE_CHECKING:
    from library_service.models.user import User


class AuditEntry(Base):
    """One staff action, written in the transaction of the change it records. Append-only:
    a trigger (see the migration) refuses every UPDATE and DELETE."""

    __tablename__ = "audit_log"
    __table_args__ = (
        CheckConstraint("reason IS NULL OR length(reason) BETWEEN 1 AND 500", name="reason_length"),
        Index("ix_audit_log_actor_id", "actor_id"),
        Index("ix_audit_log_target", "target_type", "target_id"),
        Index("ix_audit_log_member_id", "member_id", postgresql_where="member_id IS NOT NULL"),
        Index("ix_audit_log_book_id", "book_id", postgresql_where="book_id IS NOT NULL"),
        Index("ix_audit_log_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    actor_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), nullable=False
    )
    action: Mapped[str] = mapped_column(String(40), nullable=False)
    target_type: Mapped[str] = mapped_column(String(20), nullable=False)
    target_id: Mapped[int] = mapped_column(Integer, nullable=False)
    # The member and the book the action concerns, for their pages' activity (no foreign
    # key to books: a deleted book's record stays).
    member_id: Mapped[int | None] = mapped_column(Integer)
    book_id: Mapped[int | None] = mapped_column(Integer)
    # {field: [before, after]}
    changes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    reason: Mapped[str | None] = mapped_column(Text)

    actor: Mapped[User] = relationship(lazy="raise")
