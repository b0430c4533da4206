from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.core.db import AnyRow, AnySelect
from library_service.core.pagination import PageParams
from library_service.models import Book, Borrowing

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


def _contains(column: Any, term: str) -> ColumnElement[bool]:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    condition: ColumnElement[bool] = column.ilike(f"%{escaped}%", escape="\\")
    return condition


@dataclass(frozen=True, slots=True)
class BookFilters:
    search: str | None = None
    title: str | None = None
    author: str | None = None
    available: bool | None = None
    ordering: str = "id"

    @property
    def count_key(self) -> tuple[Any, ...]:
        return (self.search, self.title, self.author, self.available)

    def apply(self, statement: AnySelect) -> AnySelect:
        if self.search:
            conditions = [
                _contains(_books.title, self.search),
                _contains(_books.author, self.search),
            ]
            isbn_digits = self.search.replace("-", "").replace(" ", "")
            if isbn_digits:  # ISBNs are stored bare: "978-0-14" finds 9780141…
                conditions.append(_contains(_books.isbn, isbn_digits))
            statement = statement.where(or_(*conditions))
        if self.title:
            statement = statement.where(_contains(_books.title, self.title))
        if self.author:
            statement = statement.where(_contains(_books.author, self.author))
        if self.available is not None:
            statement = statement.where(
                _books.inventory > 0 if self.available else _books.inventory == 0
            )
        return statement


class _TotalsCache:
    """Recent totals per filter set, in this process; bounded, least recently used first out."""

    def __init__(self, size: int = 1024) -> None:
        self._entries: OrderedDict[tuple[Any, ...], tuple[float, int]] = OrderedDict()
        self._size = size

    def get(self, key: tuple[Any, ...], ttl: float) -> int | None:
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[0] > ttl:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: tuple[Any, ...], total: int) -> None:
        self._entries[key] = (time.monotonic(), total)
        self._entries.move_to_end(key)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


_totals = _TotalsCache()


class BookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, book_id: int, *, for_update: bool = False) -> Book | None:
        statement = select(Book).where(Book.id == book_id)
        if for_update:  # and re-read: the identity map may hold an older copy of the row
            statement = statement.with_for_update().execution_options(populate_existing=True)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def return_copy(self, book_id: int) -> Book | None:
        """Inventory + 1 in one statement (the row stays locked until the transaction ends)."""
        statement = (
            update(Book)
            .where(Book.id == book_id)
            .values(inventory=Book.inventory + 1)
            .returning(Book)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def list(
        self, filters: BookFilters, page: PageParams, *, count_ttl: float = 0
    ) -> tuple[Sequence[AnyRow], int]:
        """One page of rows and the total number of matches.

        The total comes from a per-process cache for `count_ttl` seconds: counting means
        visiting every matching row (on a large catalogue far more work than the page
        itself, which an index serves in order), and a catalogue's size barely moves.
        """
        statement = (
            filters.apply(select(Book.__table__))
            .order_by(*_ORDERINGS[filters.ordering])
            .limit(page.limit)
            .offset(page.offset)
        )
        rows = (await self.session.execute(statement)).all()
        total = _totals.get(filters.count_key, count_ttl)
        if total is None:
            counting = filters.apply(select(func.count()).select_from(Book.__table__))
            total = int(await self.session.scalar(counting) or 0)
            _totals.put(filters.count_key, total)
        return rows, total

    @staticmethod
    def forget_totals() -> None:
        """After a change to the catalogue, this process counts afresh."""
        _totals.clear()

    async def isbn_taken(self, isbn: str, *, except_book_id: int | None = None) -> bool:
        statement = select(Book.id).where(Book.isbn == isbn)
        if except_book_id is not None:
            statement = statement.where(Book.id != except_book_id)
        return (await self.session.execute(statement.limit(1))).first() is not None

    async def has_borrowings(self, book_id: int, *, active_only: bool) -> bool:
        condition = Borrowing.book_id == book_id
        if active_only:
            condition = condition & Borrowing.actual_return_date.is_(None)
        return bool(await self.session.scalar(select(exists().where(condition))))

    async def add(self, book: Book) -> Book:
        self.session.add(book)
        await self.session.flush()
        return book

    async def delete(self, book: Book) -> None:
        await self.session.delete(book)
        await self.session.flush()
