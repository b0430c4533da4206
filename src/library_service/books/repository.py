from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.core.db import AnyRow, AnySelect
from library_service.core.pagination import PageParams
from library_service.models import Book, Borrowing

# The list reads plain rows of these columns: no ORM identity map on the hottest endpoint.
BOOK_COLUMNS = (
    Book.id,
    Book.title,
    Book.author,
    Book.cover,
    Book.inventory,
    Book.daily_fee,
    Book.isbn,
    Book.year,
    Book.description,
)

_ORDERINGS: dict[str, tuple[ColumnElement[Any], ...]] = {
    "id": (Book.id.asc(),),
    "-id": (Book.id.desc(),),
    "title": (Book.title.asc(), Book.id.asc()),
    "-title": (Book.title.desc(), Book.id.desc()),
    "author": (Book.author.asc(), Book.id.asc()),
    "-author": (Book.author.desc(), Book.id.desc()),
    "daily_fee": (Book.daily_fee.asc(), Book.id.asc()),
    "-daily_fee": (Book.daily_fee.desc(), Book.id.desc()),
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

    def apply(self, statement: AnySelect) -> AnySelect:
        if self.search:
            conditions = [_contains(Book.title, self.search), _contains(Book.author, self.search)]
            isbn_digits = self.search.replace("-", "").replace(" ", "")
            if isbn_digits:  # ISBNs are stored bare: "978-0-14" finds 9780141…
                conditions.append(_contains(Book.isbn, isbn_digits))
            statement = statement.where(or_(*conditions))
        if self.title:
            statement = statement.where(_contains(Book.title, self.title))
        if self.author:
            statement = statement.where(_contains(Book.author, self.author))
        if self.available is not None:
            statement = statement.where(
                Book.inventory > 0 if self.available else Book.inventory == 0
            )
        return statement


class BookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, book_id: int, *, for_update: bool = False) -> Book | None:
        statement = select(Book).where(Book.id == book_id)
        if for_update:  # and re-read: the identity map may hold an older copy of the row
            statement = statement.with_for_update().execution_options(populate_existing=True)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def list(self, filters: BookFilters, page: PageParams) -> tuple[Sequence[AnyRow], int]:
        """One page of rows and the total, in one round trip (window count)."""
        statement = (
            filters.apply(select(*BOOK_COLUMNS, func.count().over().label("total")))
            .order_by(*_ORDERINGS[filters.ordering])
            .limit(page.limit)
            .offset(page.offset)
        )
        rows = (await self.session.execute(statement)).all()
        if rows:
            return rows, rows[0].total
        if page.offset == 0:
            return rows, 0
        # Past the last page: the window saw no rows, so count separately.
        total = await self.session.scalar(filters.apply(select(func.count()).select_from(Book)))
        return rows, total or 0

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
