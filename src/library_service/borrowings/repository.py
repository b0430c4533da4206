from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from library_service.core.db import AnyRow
from library_service.core.pagination import PageParams
from library_service.models import Book, Borrowing, Payment, PaymentStatus, PaymentType, User


@dataclass(frozen=True, slots=True)
class BorrowerStanding:
    active_borrowings: int
    has_unpaid_fine: bool


@dataclass(frozen=True, slots=True)
class BorrowingDraft:
    book: Book
    standing: BorrowerStanding
    payment_id: int


@dataclass(frozen=True, slots=True)
class BorrowingFilters:
    user_id: int | None = None  # the member's own id, or a staff filter
    is_active: bool | None = None


# The list reads flat rows (borrowing + book columns) in one query with its total.
_LIST_COLUMNS = (
    Borrowing.id,
    Borrowing.borrow_date,
    Borrowing.expected_return_date,
    Borrowing.actual_return_date,
    Borrowing.user_id,
    Book.id.label("book_id"),
    Book.title,
    Book.author,
    Book.cover,
    Book.daily_fee,
)


def _standing(user_id: int) -> tuple[Any, Any]:
    """The member's active loans, and whether a fine of theirs is unpaid: two columns."""
    active = (
        select(func.count())
        .where(Borrowing.user_id == user_id, Borrowing.actual_return_date.is_(None))
        .scalar_subquery()
    )
    unpaid_fine = (
        select(Payment.id)
        .join(Borrowing, Borrowing.id == Payment.borrowing_id)
        .where(
            Borrowing.user_id == user_id,
            Payment.type == PaymentType.FINE.value,
            Payment.status.in_([PaymentStatus.PENDING.value, PaymentStatus.EXPIRED.value]),
        )
        .exists()
    )
    return active, unpaid_fine


class BorrowingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(
        self,
        borrowing_id: int,
        *,
        user_id: int | None = None,
        with_book: bool = False,
        with_payments: bool = False,
    ) -> Borrowing | None:
        """A borrowing; with `user_id`, only if it is that user's."""
        statement = select(Borrowing).where(Borrowing.id == borrowing_id)
        if user_id is not None:
            statement = statement.where(Borrowing.user_id == user_id)
        if with_book:  # many-to-one: joined into the same query
            statement = statement.options(joinedload(Borrowing.book))
        if with_payments:
            statement = statement.options(selectinload(Borrowing.payments))
        if with_book or with_payments:
            statement = statement.execution_options(populate_existing=True)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def list(
        self, filters: BorrowingFilters, page: PageParams
    ) -> tuple[Sequence[AnyRow], int]:
        statement = select(*_LIST_COLUMNS, func.count().over().label("total")).join(
            Book, Book.id == Borrowing.book_id
        )
        count_statement = select(func.count()).select_from(Borrowing)
        conditions = []
        if filters.user_id is not None:
            conditions.append(Borrowing.user_id == filters.user_id)
        if filters.is_active is not None:
            conditions.append(
                Borrowing.actual_return_date.is_(None)
                if filters.is_active
                else Borrowing.actual_return_date.is_not(None)
            )
        statement = (
            statement.where(*conditions)
            .order_by(Borrowing.id.desc())
            .limit(page.limit)
            .offset(page.offset)
        )
        rows = (await self.session.execute(statement)).all()
        if rows:
            return rows, rows[0].total
        if page.offset == 0:
            return rows, 0
        return rows, int(await self.session.scalar(count_statement.where(*conditions)) or 0)

    async def lock_borrower(self, user_id: int) -> None:
        """Serialize one member's concurrent borrowings (loan limit, unpaid fines)."""
        await self.session.execute(select(User.id).where(User.id == user_id).with_for_update())

    async def prepare(self, book_id: int, user_id: int) -> BorrowingDraft | None:
        """What a borrowing needs before Stripe is called, in one round trip: the book, the
        member's standing and the id its payment will have (Stripe's metadata names it).
        None if there is no such book."""
        payment_id = func.nextval(func.pg_get_serial_sequence("payments", "id"))
        statement = select(Book, *_standing(user_id), payment_id).where(Book.id == book_id)
        row = (await self.session.execute(statement)).first()
        if row is None:
            return None
        standing = BorrowerStanding(active_borrowings=row[1], has_unpaid_fine=row[2])
        return BorrowingDraft(book=row[0], standing=standing, payment_id=row[3])

    async def take_copy(self, book_id: int, user_id: int) -> tuple[Book, BorrowerStanding] | None:
        """Inventory - 1, returning the book and the member's standing; None if no copy is
        left (or the book is gone). The caller checks the standing and rolls back if a
        rule fails.

        Call it under `lock_borrower`, in a statement of its own: a statement sees the data
        as of its start, so counting in the statement that waited for the member's lock
        would miss what the transaction it waited for had just committed.
        """
        statement = (
            update(Book)
            .where(Book.id == book_id, Book.inventory > 0)
            .values(inventory=Book.inventory - 1)
            .returning(Book, *_standing(user_id))
            .execution_options(populate_existing=True)
        )
        row = (await self.session.execute(statement)).first()
        if row is None:
            return None
        return row[0], BorrowerStanding(active_borrowings=row[1], has_unpaid_fine=row[2])

    async def mark_returned(self, borrowing_id: int, on: date) -> tuple[Borrowing, str] | None:
        """Record the return (never before the borrow date), locking the row, and read the
        member's email; None if it was returned meanwhile."""
        email = select(User.email).where(User.id == Borrowing.user_id).scalar_subquery()
        statement = (
            update(Borrowing)
            .where(Borrowing.id == borrowing_id, Borrowing.actual_return_date.is_(None))
            .values(actual_return_date=func.greatest(on, Borrowing.borrow_date))
            .returning(Borrowing, email)
            .execution_options(populate_existing=True)
        )
        row = (await self.session.execute(statement)).first()
        return (row[0], row[1]) if row else None

    async def payments_of(self, borrowing_id: int) -> Sequence[Payment]:
        statement = select(Payment).where(Payment.borrowing_id == borrowing_id).order_by(Payment.id)
        return (await self.session.scalars(statement)).all()

    async def add(self, borrowing: Borrowing) -> Borrowing:
        self.session.add(borrowing)
        await self.session.flush()
        return borrowing
