"""fetch_page: a page of rows with the total beside them, and a count of its own only for a
page past the end."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from library_service.core import pagination
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


async def test_past_the_cap_the_total_is_the_planners_estimate(db, factory, monkeypatch):
    """Counting stops at EXACT_COUNT_LIMIT; past it the count is PostgreSQL's estimate of
    the matches, never below the cap + 1, and the page itself is still exact."""
    monkeypatch.setattr(pagination, "EXACT_COUNT_LIMIT", 3)
    await factory.books([{"title": f"Book {n}"} for n in range(8)])
    every_book = select(Book).order_by(Book.title)
    async with db.autocommit_sessionmaker() as session:
        rows, total = await fetch_page(session, every_book, PageParams(limit=2, offset=2))
        assert [row.Book.title for row in rows] == ["Book 2", "Book 3"]
        assert total >= 4
        assert total == await pagination.estimated_count(session, every_book) or total == 4
        rows, total = await fetch_page(
            session, every_book.where(Book.title < "Book 2"), PageParams(limit=2, offset=0)
        )
        assert total == 2  # under the cap: exact


@pytest.mark.parametrize(
    "query",
    [
        "",
        "limit=5",
        "search=war+and+peace&limit=5&offset=10",
        "offset=3&tag=a&tag=b&empty=&limit=2",
        "search=%C5%BC%C3%B3%C5%82w&ordering=-title",
    ],
)
def test_page_links_are_written_as_starlette_writes_them(query):
    from starlette.requests import Request

    from library_service.core.pagination import _page_url

    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "server": ("testserver", 80),
        "path": "/api/books/",
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"testserver")],
    }
    request = Request(scope)
    expected = str(request.url.include_query_params(limit=7, offset=14))
    assert _page_url(request, 7, 14) == expected
