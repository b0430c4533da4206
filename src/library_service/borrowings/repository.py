from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Integer, Label, bindparam, func, null, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from library_service.borrowings.rules import BorrowFacts, ExtensionFacts, Standing
from library_service.borrowings.schemas import BorrowingFilters
from library_service.core.db import AnyRow, AnySelect, Executor
from library_service.core.pagination import (
    PageParams,
    capped_total,
    keep_estimate,
    known_estimate,
    page_total,
)
from library_service.models import (
    Book,
    Borrowing,
    Hold,
    HoldStatus,
    Payment,
    User,
    table_of,
)
from library_service.payments import rules as payment_rules

# Statements that load no objects use the tables: the session runs them as plain Core.
_books, _borrowings, _users = table_of(Book).c, table_of(Borrowing).c, table_of(User).c


@dataclass(frozen=True, slots=True)
class BookBrief:
    id: int
    title: str
    author: str
    cover: str
    daily_fee: Decimal


@dataclass(frozen=True, slots=True)
class BorrowingListItem:
    """A borrowing as the list shows it, with its book in brief."""

    id: int
    borrow_date: date
    expected_return_date: date
    actual_return_date: date | None
    user_id: int
    extensions: int
    book: BookBrief

    @property
    def is_active(self) -> bool:
        return self.actual_return_date is None


def _standing_columns() -> tuple[Label[int], Label[bool]]:
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
        .where(Borrowing.user_id == user_id, payment_rules.unpaid_fine_clause())
        .exists()
    )
    return active.label("active_borrowings"), unpaid_fine.label("has_unpaid_fine")


def _ready_hold_column() -> Label[int | None]:
    """The member `:user_id`'s READY hold on the book: the copy put aside for them."""
    return (
        select(Hold.id)
        .where(
            Hold.book_id == Book.id,
            Hold.user_id == bindparam("user_id", type_=Integer),
            Hold.status == HoldStatus.READY.value,
        )
        .scalar_subquery()
        .label("ready_hold_id")
    )


# The borrow and return writes' statements, built once (see core/db.py).
_BORROW_FACTS = select(Book, *_standing_columns(), _ready_hold_column()).where(
    Book.id == bindparam("book_id")
)
_LOCK_MEMBER = select(_users.id).where(_users.id == bindparam("user_id")).with_for_update()
# PostgreSQL locks a statement's rows table by table in FROM order: the member's, then the
# book's, the order every transaction takes them in.
_LOCK_MEMBER_AND_BOOK = (
    select(_users.id)
    .join(table_of(Book), _books.id == bindparam("book_id"))
    .where(_users.id == bindparam("user_id"))
    .with_for_update()
)


@cache
def _get_statement(
    *, by_user: bool, with_book: bool, with_member: bool, with_payments: bool, for_update: bool
) -> AnySelect:
    statement = select(Borrowing).where(Borrowing.id == bindparam("borrowing_id"))
    if by_user:
        statement = statement.where(Borrowing.user_id == bindparam("user_id"))
    if with_book:  # many-to-one: joined into the same query (and locked with it)
        statement = statement.options(joinedload(Borrowing.book, innerjoin=True))
    if with_member:
        statement = statement.options(joinedload(Borrowing.user, innerjoin=True))
    if with_payments:
        statement = statement.options(selectinload(Borrowing.payments))
    if for_update:
        statement = statement.with_for_update()
    return statement


# Built once per filter shape: a member's list is one of the hottest reads (core/db.py).
@cache
def _list_statements(
    *, by_user: bool, is_active: bool | None
) -> tuple[AnySelect, AnySelect, AnySelect]:
    """A page with the capped total beside each row, the same page with a NULL there (its
    total known: `known_estimate`), and what they select, for one filter shape. Newest
    first: a member's by ix_borrowings_user_id_id, staff's active loans by
    ix_borrowings_active_id."""
    conditions = []
    if by_user:
        conditions.append(_borrowings.user_id == bindparam("user_id"))
    if is_active is not None:
        returned = _borrowings.actual_return_date
        conditions.append(returned.is_(None) if is_active else returned.is_not(None))
    selected = select(_borrowings.id).where(*conditions)

    def page(total: ColumnElement[Any]) -> AnySelect:
        return (
            select(
                _borrowings.id,
                _borrowings.borrow_date,
                _borrowings.expected_return_date,
                _borrowings.actual_return_date,
                _borrowings.user_id,
                _borrowings.extensions,
                _books.id.label("book_id"),
                _books.title,
                _books.author,
                _books.cover,
                _books.daily_fee,
                total,
            )
            .join(table_of(Book), _books.id == _borrowings.book_id)
            .where(*conditions)
            .order_by(_borrowings.id.desc())
            .limit(bindparam("limit"))
            .offset(bindparam("offset"))
        )

    return page(capped_total(selected)), page(null().label("total")), selected


def _standing(row: AnyRow) -> Standing:
    return Standing(active_borrowings=row.active_borrowings, has_unpaid_fine=row.has_unpaid_fine)


async def borrowings_page(
    executor: Executor, filters: BorrowingFilters, page: PageParams, *, estimate_ttl: float = 0
) -> tuple[Sequence[BorrowingListItem], int]:
    """One page of borrowings and how many match (an estimate past the cap is reused for
    `estimate_ttl` seconds: core/pagination.py)."""
    counted_page, uncounted_page, selected = _list_statements(
        by_user=filters.user_id is not None, is_active=filters.is_active
    )
    known = known_estimate(filters, estimate_ttl)
    parameters = {"user_id": filters.user_id, "limit": page.limit, "offset": page.offset}
    statement = counted_page if known is None else uncounted_page
    rows = (await executor.execute(statement, parameters)).all()
    # Unpacked in the page statement's column order: reading a Row's columns one
    # attribute at a time costs several times as much.
    items = [
        BorrowingListItem(
            id=id_,
            borrow_date=borrow_date,
            expected_return_date=due,
            actual_return_date=returned,
            user_id=user_id,
            extensions=extensions,
            book=BookBrief(id=book_id, title=title, author=author, cover=cover, daily_fee=fee),
        )
        for (
            id_, borrow_date, due, returned, user_id, extensions,
            book_id, title, author, cover, fee, _total,
        ) in rows
    ]  # fmt: skip
    if known is not None:
        return items, known
    total = await page_total(executor, selected.params(parameters), page, rows)
    keep_estimate(filters, total)
    return items, total


class BorrowingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(
        self,
        borrowing_id: int,
        *,
        user_id: int | None = None,
        with_book: bool = False,
        with_member: bool = False,
        with_payments: bool = False,
        for_update: bool = False,
    ) -> Borrowing | None:
        """A borrowing; with `user_id`, only if it is that user's. `for_update` locks its
        row, and its book's when `with_book` (do not combine it with `with_member`)."""
        statement = _get_statement(
            by_user=user_id is not None,
            with_book=with_book,
            with_member=with_member,
            with_payments=with_payments,
            for_update=for_update,
        )
        parameters = {"borrowing_id": borrowing_id, "user_id": user_id}
        return (await self.session.execute(statement, parameters)).scalar_one_or_none()

    async def lock_member(self, user_id: int) -> None:
        """Serialize one member's borrowings and fines (loan limit, unpaid fines).

        Read what the lock protects in a later statement: a statement sees the data as of
        its start, so one that waited for the lock would miss what its holder had just
        committed (a loan, a fine, a hold given a copy).
        """
        await self.session.execute(_LOCK_MEMBER, {"user_id": user_id})

    async def lock_member_and_book(self, user_id: int, book_id: int) -> None:
        """Both rows, in one round trip; read the facts in a later statement (see
        `lock_member`)."""
        parameters = {"user_id": user_id, "book_id": book_id}
        await self.session.execute(_LOCK_MEMBER_AND_BOOK, parameters)

    async def member_brief(self, user_id: int) -> tuple[str, bool] | None:
        """The account's email and whether it is active; None if there is no such account."""
        statement = select(User.email, User.is_active).where(User.id == user_id)
        row = (await self.session.execute(statement)).first()
        return (row.email, row.is_active) if row else None

    async def borrow_facts(self, book_id: int, user_id: int) -> BorrowFacts | None:
        """The book, the member's standing and their READY hold on it; None if there is no
        such book."""
        parameters = {"book_id": book_id, "user_id": user_id}
        row = (await self.session.execute(_BORROW_FACTS, parameters)).first()
        if row is None:
            return None
        return BorrowFacts(book=row.Book, standing=_standing(row), ready_hold_id=row.ready_hold_id)

    async def standing(self, user_id: int) -> Standing:
        row = (await self.session.execute(select(*_standing_columns()), {"user_id": user_id})).one()
        return _standing(row)

    async def extension_facts(self, borrowing: Borrowing) -> ExtensionFacts:
        """The borrower's standing, and whether another member waits for the book."""
        others_waiting = (
            select(Hold.id)
            .where(
                Hold.book_id == borrowing.book_id,
                Hold.user_id != borrowing.user_id,
                Hold.status == HoldStatus.WAITING.value,
            )
            .exists()
            .label("others_waiting")
        )
        statement = select(*_standing_columns(), others_waiting)
        row = (await self.session.execute(statement, {"user_id": borrowing.user_id})).one()
        return ExtensionFacts(standing=_standing(row), others_waiting=row.others_waiting)

    async def add(self, borrowing: Borrowing) -> Borrowing:
        self.session.add(borrowing)
        await self.session.flush()
        return borrowing
