from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, DateTime, ForeignKey, Identity, Index, Integer, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from library_service.models.base import Base
from library_service.models.book import Book
from library_service.models.payment import Payment
from library_service.models.user import User


class Borrowing(Base):
    __tablename__ = "borrowings"
    __table_args__ = (
        CheckConstraint("expected_return_date > borrow_date", name="expected_after_borrow"),
        CheckConstraint("actual_return_date >= borrow_date", name="returned_after_borrow"),
        # Members' lists: own borrowings, newest first.
        Index("ix_borrowings_user_id_id", "user_id", "id"),
        # Loan limit and the daily overdue report look only at active loans.
        Index(
            "ix_borrowings_active_user_id",
            "user_id",
            postgresql_where="actual_return_date IS NULL",
        ),
        # The overdue report, in its order.
        Index(
            "ix_borrowings_active_expected_return_date_id",
            "expected_return_date",
            "id",
            postgresql_where="actual_return_date IS NULL",
        ),
        # Staff's active loans, newest first: 1 % of a large ledger.
        Index("ix_borrowings_active_id", "id", postgresql_where="actual_return_date IS NULL"),
        Index("ix_borrowings_book_id", "book_id"),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    borrow_date: Mapped[date] = mapped_column(Date, nullable=False)
    expected_return_date: Mapped[date] = mapped_column(Date, nullable=False)
    actual_return_date: Mapped[date | None] = mapped_column(Date)
    book_id: Mapped[int] = mapped_column(
        ForeignKey("books.id", ondelete="RESTRICT"), nullable=False
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), nullable=False
    )
    extensions: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    book: Mapped[Book] = relationship(lazy="raise")
    user: Mapped[User] = relationship(lazy="raise")
    payments: Mapped[list[Payment]] = relationship(
        lazy="raise", order_by=lambda: Payment.id, back_populates="borrowing"
    )

    @property
    def is_active(self) -> bool:
        return self.actual_return_date is None
