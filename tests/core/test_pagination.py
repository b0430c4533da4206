"""fetch_page: a page of rows with the total beside them, and a count of its own only for a
page past the end."""

from __future__ import annotations

from sqlalchemy import select

from library_service.core.pagination import PageParams, fetch_page
from library_service.models import Book


async def test_a_page_and_the_total_of_the_rows_the_statement_selects(db, factory):
    await factory.books([{"title": f"Book {n}", "inventory": n % 2} for n in range(5)])
    on_the_shelf = select(Book).where(Book.inventory > 0).order_by(Book.title)
    async with db.autocommit_sessionmaker() as session:
        rows, total = await fetch_page(session, on_the_shelf, PageParams(limit=1, offset=1))
        assert [row.Book.title for row in rows] == ["Book 3"]
        assert total == 2
        past_the_end, total = await fetch_page(session, on_the_shelf, PageParams(limit=1, offset=5))
        assert list(past_the_end) == []
        assert total == 2
        nothing, total = await fetch_page(
            session, on_the_shelf.where(Book.inventory > 5), PageParams(limit=1, offset=0)
        )
        assert list(nothing) == []
        assert total == 0
