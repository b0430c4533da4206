from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from library_service.models.base import Base

if TYPE_CHECKING:
    from library_service.models.borrowing import Borrowing
    from library_service.models.user import User


class PaymentStatus(enum.StrEnum):
    PENDING = "PENDING"
    PAID = "PAID"
    EXPIRED = "EXPIRED"
    WAIVED = "WAIVED"


class PaymentMethod(enum.StrEnum):
    """How a payment was settled: by card at Stripe, in cash at the desk, or waived."""

    CARD = "card"
    CASH = "cash"
    WAIVED = "waived"


class PaymentType(enum.StrEnum):
    PAYMENT = "PAYMENT"
    FINE = "FINE"


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("status IN ('PENDING', 'PAID', 'EXPIRED', 'WAIVED')", name="status_valid"),
        CheckConstraint(
            "method IS NULL OR method IN ('card', 'cash', 'waived')", name="method_valid"
        ),
        # A waiver is always recorded as one, by a member of staff.
        CheckConstraint(
            "(status = 'WAIVED') = (method IS NOT DISTINCT FROM 'waived')", name="waived_method"
        ),
        CheckConstraint("type IN ('PAYMENT', 'FINE')", name="type_valid"),
        CheckConstraint("money_to_pay > 0", name="money_to_pay_positive"),
        Index("ix_payments_borrowing_id", "borrowing_id"),
        # The expiry poll and the fine-session retry scan only unpaid payments.
        Index("ix_payments_pending", "id", postgresql_where="status = 'PENDING'"),
        # Staff's ?status= other than PAID (few among millions), newest first.
        Index("ix_payments_unpaid_status_id", "status", "id", postgresql_where="status <> 'PAID'"),
        # Staff's ?type=FINE (one payment in twenty), newest first.
        Index("ix_payments_fine_id", "id", postgresql_where="type = 'FINE'"),
        # The expiry poll, soonest to expire first; the fines still without a session.
        Index(
            "ix_payments_open_session_expires_at_id",
            "session_expires_at",
            "id",
            postgresql_where="status = 'PENDING' AND session_id IS NOT NULL",
        ),
        Index(
            "ix_payments_pending_without_session_id",
            "id",
            postgresql_where="status = 'PENDING' AND session_id IS NULL",
        ),
        # What was collected over some days (GET /api/payments/totals/, the Desk's cash today).
        Index("ix_payments_paid_at", "paid_at", postgresql_where="status = 'PAID'"),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    status: Mapped[str] = mapped_column(
        String(8), nullable=False, server_default=PaymentStatus.PENDING.value
    )
    type: Mapped[str] = mapped_column(String(8), nullable=False)
    borrowing_id: Mapped[int] = mapped_column(
        ForeignKey("borrowings.id", ondelete="RESTRICT"), nullable=False
    )
    session_url: Mapped[str | None] = mapped_column(Text)
    session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    session_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    money_to_pay: Mapped[Decimal] = mapped_column(Numeric(10, 2), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when the payment is settled: card (Stripe), cash or waived (at the desk).
    method: Mapped[str | None] = mapped_column(String(8))
    # The member of staff who took the cash or waived the payment.
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))

    borrowing: Mapped[Borrowing] = relationship(lazy="raise", back_populates="payments")
    recorder: Mapped[User | None] = relationship(lazy="raise", foreign_keys=[recorded_by])
