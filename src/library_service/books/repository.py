from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, bindparam, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.books.schemas import BookFilters
from library_service.core.db import AnyRow, AnySelect, Executor
from library_service.core.pagination import PageParams, RecentTotals, settle_count
from library_service.core.search import contains_pattern
from library_service.models import Book, Borrowing, Hold

# The catalogue list is the hottest query: it is written against the table's columns, not
# the ORM attributes, so it runs as plain Core (no ORM compilation, rows instead of objects).
_books = Book.__table__.c

_ORDERINGS: dict[str, tuple[ColumnElement[Any], ...]] = {
    "id": (_books.id.asc(),),
    "-id": (_books.id.desc(),),
    "title": (_books.title.asc(), _books.id.asc()),
    "-title": (_books.title.desc(), _books.id.desc()),
    "author": (_books.author.asc(), _books.id.asc()),
    "-author": (_books.author.desc(), _books.id.desc()),
    "daily_fee": (_books.daily_fee.asc(), _books.id.asc()),
    "-daily_fee": (_books.daily_fee.desc(), _books.id.desc()),
}


def _contains(column: Any, parameter: str) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = column.ilike(bindparam(parameter), escape="\\")
    return condition


_ISBN_PART = re.compile(r"[0-9]*[0-9X]")


def _isbn_digits(search: str | None) -> str:
    """ISBNs are stored bare: "978-0-14" finds 9780141…"""
    return (search or "").replace("-", "").replace(" ", "").upper()


def _could_be_isbn(digits: str) -> bool:
    """Only digits (an ISBN-10 may end in X) can be part of a stored ISBN: any other term
    leaves the ISBN out of the search."""
    return _ISBN_PART.fullmatch(digits) is not None


def isbn_digits_searched(term: str) -> str | None:
    """The digits a search for `term` looks for among ISBNs, or None when the term cannot be
    part of one (the catalogue's rule; the admin's book search follows it too)."""
    digits = _isbn_digits(term)
    return digits if _could_be_isbn(digits) else None


def _isbn13(digits: str) -> str | None:
    """A whole ISBN as stored for an ISBN-13 (an ISBN-10 converted: 978, its first nine
    digits, a new check digit); None for a term that is not a whole ISBN."""
    if len(digits) == 13 and digits.isdigit():
        return digits
    if len(digits) == 10 and digits[:9].isdigit():
        twelve = "978" + digits[:9]
        check = -sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(twelve)) % 10
        return twelve + str(check)
    return None


def _parameters(filters: BookFilters) -> dict[str, str | None]:
    digits = _isbn_digits(filters.search)
    return {
        "search": contains_pattern(filters.search or ""),
        "isbn": contains_pattern(digits),
        "isbn_whole": digits,
        "isbn13": _isbn13(digits),
        "title": contains_pattern(filters.title or ""),
        "author": contains_pattern(filters.author or ""),
    }


def _isbn_kind(digits: str) -> str:
    if not _could_be_isbn(digits):
        return ""
    if len(digits) == 13 and digits.isdigit():
        return "13"
    return "10" if _isbn13(digits) else "part"


@dataclass(frozen=True, slots=True)
class _Shape:
    """Which filters are set: the statement's form (the values go in as parameters)."""

    search: bool
    isbn: str  # "": not an ISBN; "13": a whole ISBN-13; "10": a whole ISBN-10; "part"
    title: bool
    author: bool
    available: bool | None
    withdrawn: bool

    @classmethod
    def of(cls, filters: BookFilters) -> _Shape:
        return cls(
            search=bool(filters.search),
            isbn=_isbn_kind(_isbn_digits(filters.search)),
            title=bool(filters.title),
            author=bool(filters.author),
            available=filters.available,
            withdrawn=filters.withdrawn,
        )

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions = []
        if self.search:
            matches = [_contains(_books.title, "search"), _contains(_books.author, "search")]
            # A whole ISBN is looked up in uq_books_isbn (an ISBN-10 under its ISBN-13
            # too); part of one goes through ix_books_isbn_trgm.
            if self.isbn == "13":
                matches.append(_books.isbn == bindparam("isbn_whole"))
            elif self.isbn == "10":
                matches.append(_books.isbn == bindparam("isbn13"))
            if self.isbn in {"10", "part"}:
                matches.append(_contains(_books.isbn, "isbn"))
            conditions.append(or_(*matches))
        if self.title:
            conditions.append(_contains(_books.title, "title"))
        if self.author:
            conditions.append(_contains(_books.author, "author"))
        conditions.append(_books.withdrawn.is_(self.withdrawn))
        if self.available is not None:
            conditions.append(_books.inventory > 0 if self.available else _books.inventory == 0)
        return conditions


# Built once per filter shape and ordering: the catalogue page is the hottest read (core/db.py).
@cache
def _page_statement(shape: _Shape, ordering: str) -> AnySelect:
    return (
        select(Book.__table__)
        .where(*shape.conditions())
        .order_by(*_ORDERINGS[ordering])
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )


@cache
def _selected(shape: _Shape) -> AnySelect:
    """The rows a filter shape selects, to count (core/pagination.py: exact up to a cap)."""
    return select(_books.id).where(*shape.conditions())


_totals = RecentTotals()


async def catalogue_page(
    executor: Executor, filters: BookFilters, page: PageParams, *, count_ttl: float = 0
) -> tuple[Sequence[AnyRow], int]:
    """One page of the catalogue's rows and the total number of matches.

    The total comes from a per-process cache for `count_ttl` seconds: counting means
    visiting every matching row (on a large catalogue far more work than the page itself,
    which an index serves in order), and a catalogue's size barely moves.
    """
    shape, parameters = _Shape.of(filters), _parameters(filters)
    statement = _page_statement(shape, filters.ordering)
    page_parameters = {**parameters, "limit": page.limit, "offset": page.offset}
    rows = (await executor.execute(statement, page_parameters)).all()
    count_key = (
        filters.search,
        filters.title,
        filters.author,
        filters.available,
        filters.withdrawn,
    )
    total = _totals.get(count_key, count_ttl)
    if total is None:
        total = await settle_count(executor, _selected(shape).params(parameters), None)
        _totals.put(count_key, total)
    return rows, total


class BookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, book_id: int, *, for_update: bool = False) -> Book | None:
        statement = select(Book).where(Book.id == book_id)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    @staticmethod
    def forget_totals() -> None:
        """After a change to the catalogue, this process counts afresh."""
        _totals.clear()

    async def isbn_taken(self, isbn: str, *, except_book_id: int | None = None) -> bool:
        statement = select(Book.id).where(Book.isbn == isbn)
        if except_book_id is not None:
            statement = statement.where(Book.id != except_book_id)
        return (await self.session.execute(statement.limit(1))).first() is not None

    async def on_loan(self, book_id: int) -> bool:
        active = Borrowing.book_id == book_id, Borrowing.actual_return_date.is_(None)
        return bool(await self.session.scalar(select(exists().where(*active))))

    async def has_history(self, book_id: int) -> bool:
        """Borrowings or holds name the book: the ledger keeps it."""
        borrowed = exists().where(Borrowing.book_id == book_id)
        held = exists().where(Hold.book_id == book_id)
        return bool(await self.session.scalar(select(borrowed | held)))

    async def add(self, book: Book) -> Book:
        self.session.add(book)
        await self.session.flush()
        return book

    async def delete(self, book: Book) -> None:
        await self.session.delete(book)
        await self.session.flush()
