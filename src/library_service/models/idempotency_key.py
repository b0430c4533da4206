from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from library_service.models.base import Base


class IdempotencyKey(Base):
    """A member's `Idempotency-Key` on a write: the request it was first sent with, the
    request running it (while it runs) and the answer to give every retry.

    No foreign key to `users`: inserting one would take a share lock on the member's row,
    which their own borrowings lock for update; rows are purged when they expire.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        CheckConstraint("status_code BETWEEN 100 AND 599", name="status_code_valid"),
        Index("ix_idempotency_keys_expires_at", "expires_at"),
    )

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # SHA-256 of the method, the path and the body: a retry must send the same request.
    request_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    # The request running the operation (a random token), and until when it may; None once
    # answered. A claim whose lease has lapsed without a commit may be taken over.
    owner: Mapped[str | None] = mapped_column(String(32))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set in the operation's own transaction: from then on it never runs again for this key.
    committed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status_code: Mapped[int | None] = mapped_column(SmallInteger)
    response_headers: Mapped[list[Any] | None] = mapped_column(JSONB)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
