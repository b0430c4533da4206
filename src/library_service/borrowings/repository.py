from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from sqlalchemy import Date, Integer, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from library_service.core.db import AnyRow, AnySelect
from library_service.core.pagination import PageParams
from library_service.models import Book, Borrowing, Payment, PaymentStatus, PaymentType, User
from library_service.payments.repository import NEXT_PAYMENT_ID


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


def _standing() -> tuple[Any, Any]:
    """The member `:user_id`'s active loans, and whether a fine of theirs is unpaid."""
    user_id = bindparam("user_id", type_=Integer)
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


# The hot paths' statements, built once (see core/db.py).
_PREPARE = select(Book, *_standing(), NEXT_PAYMENT_ID).where(Book.id == bindparam("book_id"))
_LOCK_BORROWER = select(User.id).where(User.id == bindparam("user_id")).with_for_update()
_TAKE_COPY = (
    update(Book)
    .where(Book.id == bindparam("book_id"), Book.inventory > 0)
    .values(inventory=Book.inventory - 1)
    .returning(Book, *_standing())
    .execution_options(populate_existing=True)
)
_MARK_RETURNED = (
    update(Borrowing)
    .where(Borrowing.id == bindparam("borrowing_id"), Borrowing.actual_return_date.is_(None))
    .values(actual_return_date=func.greatest(bindparam("on", type_=Date), Borrowing.borrow_date))
    .returning(Borrowing, select(User.email).where(User.id == Borrowing.user_id).scalar_subquery())
    .execution_options(populate_existing=True)
)
_PAYMENTS_OF = (
    select(Payment).where(Payment.borrowing_id == bindparam("borrowing_id")).order_by(Payment.id)
)


@cache
def _get_statement(*, by_user: bool, with_book: bool, with_payments: bool) -> AnySelect:
    statement = select(Borrowing).where(Borrowing.id == bindparam("borrowing_id"))
    if by_user:
        statement = statement.where(Borrowing.user_id == bindparam("user_id"))
    if with_book:  # many-to-one: joined into the same query
        statement = statement.options(joinedload(Borrowing.book))
    if with_payments:
        statement = statement.options(selectinload(Borrowing.payments))
    if with_book or with_payments:
        statement = statement.execution_options(populate_existing=True)
    return statement


@cache
def _list_statements(*, by_user: bool, is_active: bool | None) -> tuple[AnySelect, AnySelect]:
    """A page (with the total beside each row) and the bare count, for one filter shape."""
    conditions = []
    if by_user:
        conditions.append(Borrowing.user_id == bindparam("user_id"))
    if is_active is not None:
        conditions.append(
            Borrowing.actual_return_date.is_(None)
            if is_active
            else Borrowing.actual_return_date.is_not(None)
        )
    page = (
        select(*_LIST_COLUMNS, func.count().over().label("total"))
        .join(Book, Book.id == Borrowing.book_id)
        .where(*conditions)
        .order_by(Borrowing.id.desc())
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )
    count = select(func.count()).select_from(Borrowing).where(*conditions)
    return page, count


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
        statement = _get_statement(
            by_user=user_id is not None, with_book=with_book, with_payments=with_payments
        )
        parameters = {"borrowing_id": borrowing_id, "user_id": user_id}
        return (await self.session.execute(statement, parameters)).scalar_one_or_none()

    async def list(
        self, filters: BorrowingFilters, page: PageParams
    ) -> tuple[Sequence[AnyRow], int]:
        page_statement, count_statement = _list_statements(
            by_user=filters.user_id is not None, is_active=filters.is_active
        )
        parameters = {"user_id": filters.user_id, "limit": page.limit, "offset": page.offset}
        rows = (await self.session.execute(page_statement, parameters)).all()
        if rows:
            return rows, rows[0].total
        if page.offset == 0:
            return rows, 0
        return rows, int(await self.session.scalar(count_statement, parameters) or 0)

    async def lock_borrower(self, user_id: int) -> None:
        """Serialize one member's concurrent borrowings (loan limit, unpaid fines)."""
        await self.session.execute(_LOCK_BORROWER, {"user_id": user_id})

    async def prepare(self, book_id: int, user_id: int) -> BorrowingDraft | None:
        """What a borrowing needs before Stripe is called, in one round trip: the book, the
        member's standing and the id its payment will have (Stripe's metadata names it).
        None if there is no such book."""
        parameters = {"book_id": book_id, "user_id": user_id}
        row = (await self.session.execute(_PREPARE, parameters)).first()
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
        parameters = {"book_id": book_id, "user_id": user_id}
        row = (await self.session.execute(_TAKE_COPY, parameters)).first()
        if row is None:
            return None
        return row[0], BorrowerStanding(active_borrowings=row[1], has_unpaid_fine=row[2])

    async def mark_returned(self, borrowing_id: int, on: date) -> tuple[Borrowing, str] | None:
        """Record the return (never before the borrow date), locking the row, and read the
        member's email; None if it was returned meanwhile."""
        parameters = {"borrowing_id": borrowing_id, "on": on}
        row = (await self.session.execute(_MARK_RETURNED, parameters)).first()
        return (row[0], row[1]) if row else None

    async def payments_of(self, borrowing_id: int) -> Sequence[Payment]:
        parameters = {"borrowing_id": borrowing_id}
        return (await self.session.scalars(_PAYMENTS_OF, parameters)).all()

    async def add(self, borrowing: Borrowing) -> Borrowing:
        self.session.add(borrowing)
        await self.session.flush()
        return borrowing
