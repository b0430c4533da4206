from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Insert,
    Integer,
    Label,
    Update,
    bindparam,
    func,
    insert,
    null,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from library_service.borrowings.rules import BorrowFacts, ExtensionFacts, Standing
from library_service.borrowings.schemas import BorrowingFilters
from library_service.core.db import AnyRow, AnySelect, Executor, Writes, written
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


# The borrow and return writes' statements, built once (see core/db.py). A loan's facts
# are columns, and its book a plain object: the loan is written by one statement of its
# own (`lend`), so its write phase keeps no objects for the session to flush.
_BOOK_COLUMNS = tuple(column.name for column in table_of(Book).columns)
_BORROW_FACTS = select(table_of(Book), *_standing_columns(), _ready_hold_column()).where(
    _books.id == bindparam("book_id")
)
_LOCK_MEMBER = select(_users.id).where(_users.id == bindparam("user_id")).with_for_update()
# PostgreSQL locks a statement's rows table by table in FROM order: the member's, then the
# book's, the order every transaction takes them in. The new loan's id is drawn with them.
_LOCK_FOR_LOAN = (
    select(func.nextval(func.pg_get_serial_sequence("borrowings", "id")).label("loan_id"))
    .select_from(table_of(User))
    .join(table_of(Book), _books.id == bindparam("book_id"))
    .where(_users.id == bindparam("user_id"))
    .with_for_update()
)


@cache
def _return_statements(*, to_shelf: bool, fined: bool) -> tuple[CTE, ...]:
    """A loan closed, its copy back on the shelf (unless a hold took it) and its fine."""
    closed = (
        update(table_of(Borrowing))
        .where(_borrowings.id == bindparam("loan_id"))
        .values(actual_return_date=bindparam("loan_returned"))
    )
    statements = [closed.cte("closed")]
    if to_shelf:
        statements.append(_shelf_update().cte("shelf"))
    if fined:
        statements.append(_payment_insert().cte("fine"))
    return tuple(statements)


@cache
def _extend_statements() -> tuple[CTE, ...]:
    """A loan's new due date, and the payment for the days added."""
    extended = (
        update(table_of(Borrowing))
        .where(_borrowings.id == bindparam("loan_id"))
        .values(expected_return_date=bindparam("loan_due"), extensions=bindparam("loan_extensions"))
    )
    return extended.cte("extended"), _payment_insert().cte("fee")


def _shelf_update() -> Update:
    return (
        update(table_of(Book))
        .where(_books.id == bindparam("loan_book_id"))
        .values(inventory=bindparam("shelf_inventory"))
    )


def _payment_insert() -> Insert:
    return insert(table_of(Payment)).values(
        id=bindparam("fee_id"),
        borrowing_id=bindparam("loan_id"),
        type=bindparam("fee_type"),
        status=bindparam("fee_status"),
        money_to_pay=bindparam("fee_amount"),
        session_id=bindparam("fee_session_id"),
        session_url=bindparam("fee_session_url"),
        session_expires_at=bindparam("fee_session_expires_at"),
    )


def _payment_parameters(payment: Payment) -> dict[str, Any]:
    return {
        "fee_id": payment.id,
        "fee_type": payment.type,
        "fee_status": payment.status,
        "fee_amount": payment.money_to_pay,
        "fee_session_id": payment.session_id,
        "fee_session_url": payment.session_url,
        "fee_session_expires_at": payment.session_expires_at,
    }


@cache
def _lend_statements(*, from_shelf: bool) -> tuple[CTE, ...]:
    """A loan, its fee and (unless its copy was put aside for a hold) the shelf count."""
    loan = insert(table_of(Borrowing)).values(
        id=bindparam("loan_id"),
        borrow_date=bindparam("loan_start"),
        expected_return_date=bindparam("loan_due"),
        book_id=bindparam("loan_book_id"),
        user_id=bindparam("loan_user_id"),
    )
    statements = [loan.cte("loan"), _payment_insert().cte("fee")]
    if from_shelf:
        statements.append(_shelf_update().cte("shelf"))
    return tuple(statements)


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

    async def lock_for_loan(self, user_id: int, book_id: int) -> int | None:
        """The member's and the book's rows locked, in one round trip, and the id the new
        loan will have (None: no such member or book). Read the facts in a later statement
        (see `lock_member`)."""
        parameters = {"user_id": user_id, "book_id": book_id}
        loan_id: int | None = (await self.session.execute(_LOCK_FOR_LOAN, parameters)).scalar()
        return loan_id

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
        book = Book(**{name: getattr(row, name) for name in _BOOK_COLUMNS})
        return BorrowFacts(book=book, standing=_standing(row), ready_hold_id=row.ready_hold_id)

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

    @staticmethod
    def lend(borrowing: Borrowing, fee: Payment, *, from_shelf: bool) -> Writes:
        """The writes of a new loan (`borrowing`, with its `book`), for the statement that
        records its staff message: the loan, its first payment `fee` and, `from_shelf`, the
        book's shelf count as `borrowing.book` now has it."""
        parameters = {
            "loan_id": borrowing.id,
            "loan_start": borrowing.borrow_date,
            "loan_due": borrowing.expected_return_date,
            "loan_book_id": borrowing.book_id,
            "loan_user_id": borrowing.user_id,
            "shelf_inventory": borrowing.book.inventory,
            **_payment_parameters(fee),
        }
        return Writes(_lend_statements(from_shelf=from_shelf), parameters)

    @staticmethod
    def extend(borrowing: Borrowing, fee: Payment) -> Writes:
        """The writes of an extension, for the statement that records its staff message:
        the locked `borrowing`'s due date and extensions as it now has them, and the `fee`
        for the added days (the session is told, as in `close`)."""
        parameters = {
            "loan_id": borrowing.id,
            "loan_due": borrowing.expected_return_date,
            "loan_extensions": borrowing.extensions,
            **_payment_parameters(fee),
        }
        written(borrowing, "expected_return_date")
        written(borrowing, "extensions")
        set_committed_value(borrowing, "payments", [*borrowing.payments, fee])
        return Writes(_extend_statements(), parameters)

    @staticmethod
    def close(borrowing: Borrowing, fine: Payment | None, *, to_shelf: bool) -> Writes:
        """The writes of a return, for the statement that records its staff message: the
        locked `borrowing`'s return date, its book's shelf count (`to_shelf`: the copy went
        back on it) and its `fine`, as the objects now have them. The session is told
        these are written, so its flush leaves them alone (the holds that took the copy,
        if any, it flushes as usual)."""
        parameters = {
            "loan_id": borrowing.id,
            "loan_returned": borrowing.actual_return_date,
            "loan_book_id": borrowing.book_id,
            "shelf_inventory": borrowing.book.inventory,
            **(_payment_parameters(fine) if fine is not None else {}),
        }
        written(borrowing, "actual_return_date")
        written(borrowing.book, "inventory")
        if fine is not None:
            set_committed_value(borrowing, "payments", [*borrowing.payments, fine])
        return Writes(_return_statements(to_shelf=to_shelf, fined=fine is not None), parameters)
