"""The public catalogue: reading, filters, ordering and pages."""

from __future__ import annotations

from decimal import Decimal

import pytest

from library_service.core import pagination
from library_service.models import Book

BOOKS = "/api/books/"


def detail(book_id: int | str) -> str:
    return f"{BOOKS}{book_id}/"


async def titles(client, query: str = "") -> list[str]:
    response = await client.get(f"{BOOKS}?{query}")
    assert response.status_code == 200, response.text
    return [book["title"] for book in response.json()["results"]]


# --- reading is public ----------------------------------------------------------------------


async def test_list_is_public(client, factory):
    book = await factory.book(isbn="9780141439518", year=1813, description="Classic.")
    response = await client.get(BOOKS)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == 1
    assert body["next"] is None
    assert body["previous"] is None
    assert body["results"] == [
        {
            "id": book.id,
            "title": "Pride and Prejudice",
            "author": "Jane Austen",
            "cover": "SOFT",
            "inventory": 5,
            "daily_fee": "1.50",
            "isbn": "9780141439518",
            "year": 1813,
            "description": "Classic.",
            "withdrawn": False,
        }
    ]


async def test_detail_is_public(client, factory):
    book = await factory.book(daily_fee=Decimal("2"))
    response = await client.get(detail(book.id))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": book.id,
        "title": "Pride and Prejudice",
        "author": "Jane Austen",
        "cover": "SOFT",
        "inventory": 5,
        "daily_fee": "2.00",
        "isbn": None,
        "year": None,
        "description": None,
        "withdrawn": False,
    }


async def test_empty_catalogue(client):
    response = await client.get(BOOKS)
    assert response.status_code == 200, response.text
    assert response.json() == {"count": 0, "next": None, "previous": None, "results": []}


# --- filters --------------------------------------------------------------------------------


@pytest.fixture
async def catalogue(factory) -> list[Book]:
    return await factory.books(
        [
            {"title": "War and Peace", "author": "Leo Tolstoy", "isbn": "9780140447934"},
            {"title": "Anna Karenina", "author": "Leo Tolstoy", "inventory": 0},
            {"title": "Emma", "author": "Jane Austen", "isbn": "9780141439587"},
            {"title": "The Peace Book", "author": "Anon", "inventory": 0},
        ],
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("search=peace", ["War and Peace", "The Peace Book"]),
        ("search=PEACE", ["War and Peace", "The Peace Book"]),
        ("search=tolSTOY", ["War and Peace", "Anna Karenina"]),
        ("search=9780141439587", ["Emma"]),
        ("search=978-0-14-143958", ["Emma"]),
        ("search=14044", ["War and Peace"]),
        ("search=austen", ["Emma"]),
        ("search=nothing-like-this", []),
        ("title=peace", ["War and Peace", "The Peace Book"]),
        ("title=tolstoy", []),
        ("author=TOLSTOY", ["War and Peace", "Anna Karenina"]),
        ("author=peace", []),
        ("author=leo&title=anna", ["Anna Karenina"]),
        ("available=true", ["War and Peace", "Emma"]),
        ("available=false", ["Anna Karenina", "The Peace Book"]),
        ("available=true&search=peace", ["War and Peace"]),
        ("available=false&author=tolstoy", ["Anna Karenina"]),
    ],
)
async def test_filters(client, catalogue, query, expected):
    response = await client.get(f"{BOOKS}?{query}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [book["title"] for book in body["results"]] == expected
    assert body["count"] == len(expected)


async def test_search_wildcards_are_literal(client, factory):
    await factory.books(
        [
            {"title": "100% Pure", "author": "A"},
            {"title": "Plain", "author": "B"},
            {"title": "snake_case", "author": "C"},
            {"title": "snakeXcase", "author": "D"},
            {"title": "back\\slash", "author": "E"},
        ],
    )
    assert await titles(client, "search=%25") == ["100% Pure"]
    assert await titles(client, "search=e_c") == ["snake_case"]
    assert await titles(client, "title=_") == ["snake_case"]
    assert await titles(client, "author=%25") == []
    assert await titles(client, "search=%5C") == ["back\\slash"]


async def test_search_for_a_whole_isbn_finds_it_in_either_form(client, factory):
    """An ISBN-10 finds the book stored under its ISBN-13 (and under itself); letters other
    than a final X leave ISBNs out of the search."""
    await factory.books(
        [
            {"title": "Emma", "isbn": "9780141439587"},
            {"title": "Pride", "isbn": "0141439513"},
            {"title": "Other", "isbn": "9780140447934"},
        ],
    )
    assert await titles(client, "search=0-14-143958-0") == ["Emma"]
    assert await titles(client, "search=978-0-14-143958-7") == ["Emma"]
    assert await titles(client, "search=0141439513") == ["Pride"]
    assert await titles(client, "search=1439513") == ["Pride"]
    assert await titles(client, "search=9780141439587x") == []


async def test_search_hyphen_does_not_match_every_isbn(client, factory):
    """Hyphens are ignored inside ISBNs, but '-' alone must not match every book with one."""
    await factory.books(
        [
            {"title": "Emma", "isbn": "9780141439587"},
            {"title": "Self-Help", "isbn": "9780140447934"},
        ],
    )
    assert await titles(client, "search=-") == ["Self-Help"]


@pytest.mark.parametrize("query", ["available=maybe", "search=" + "x" * 101, "ordering=price"])
async def test_invalid_filter_values_are_422(client, catalogue, query):
    response = await client.get(f"{BOOKS}?{query}")
    assert response.status_code == 422, response.text


async def test_search_with_nul_character_is_not_a_500(client, catalogue):
    response = await client.get(f"{BOOKS}?search=a%00b")
    assert response.status_code in {200, 422}, response.text
    if response.status_code == 200:
        assert response.json()["results"] == []


# --- ordering -------------------------------------------------------------------------------


@pytest.fixture
async def ordered_catalogue(factory) -> list[Book]:
    return await factory.books(
        [
            {"title": "Beta", "author": "Carol", "daily_fee": Decimal("10.00")},
            {"title": "Alpha", "author": "Dave", "daily_fee": Decimal("9.00")},
            {"title": "Delta", "author": "Alice", "daily_fee": Decimal("2.50")},
            {"title": "Gamma", "author": "Bob", "daily_fee": Decimal("100.00")},
        ],
    )


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("title", ["Alpha", "Beta", "Delta", "Gamma"]),
        ("-title", ["Gamma", "Delta", "Beta", "Alpha"]),
        ("author", ["Delta", "Gamma", "Beta", "Alpha"]),
        ("daily_fee", ["Delta", "Alpha", "Beta", "Gamma"]),  # numeric, not text, order
    ],
)
async def test_ordering(client, ordered_catalogue, ordering, expected):
    assert await titles(client, f"ordering={ordering}") == expected


async def test_default_ordering_is_stable_by_id(client, ordered_catalogue):
    assert await titles(client) == ["Beta", "Alpha", "Delta", "Gamma"]


@pytest.mark.parametrize("ordering", ["price", "TITLE", "title,author", "", "--title"])
async def test_invalid_ordering_is_422(client, ordered_catalogue, ordering):
    response = await client.get(BOOKS, params={"ordering": ordering})
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], list)


# --- pagination -----------------------------------------------------------------------------


async def test_default_page_is_20(client, factory):
    await factory.books([{"title": f"Book {i:03d}"} for i in range(25)])
    response = await client.get(BOOKS)
    body = response.json()
    assert body["count"] == 25
    assert len(body["results"]) == 20
    assert body["results"][0]["title"] == "Book 000"
    assert body["previous"] is None
    assert body["next"] is not None
    assert "limit=20" in body["next"]
    assert "offset=20" in body["next"]

    second = (await client.get(body["next"])).json()
    assert second["count"] == 25
    assert [b["title"] for b in second["results"]] == [f"Book {i:03d}" for i in range(20, 25)]
    assert second["next"] is None
    assert second["previous"] is not None
    assert "offset=0" in second["previous"]
    back = (await client.get(second["previous"])).json()
    assert back["results"] == body["results"]


async def test_limit_and_offset(client, factory):
    await factory.books([{"title": f"Book {i:03d}"} for i in range(10)])
    body = (await client.get(BOOKS, params={"limit": 3, "offset": 4})).json()
    assert body["count"] == 10
    assert [b["title"] for b in body["results"]] == ["Book 004", "Book 005", "Book 006"]
    assert "limit=3" in body["next"]
    assert "offset=7" in body["next"]
    assert "limit=3" in body["previous"]
    assert "offset=1" in body["previous"]


async def test_pagination_keeps_filters_in_links(client, factory):
    await factory.books(
        [{"title": f"Peace {i}"} for i in range(3)] + [{"title": "Other"} for _ in range(3)]
    )
    body = (await client.get(BOOKS, params={"search": "peace", "limit": 2})).json()
    assert body["count"] == 3
    assert "search=peace" in body["next"]
    second = (await client.get(body["next"])).json()
    assert [b["title"] for b in second["results"]] == ["Peace 2"]


async def test_limit_above_100_is_capped(client, factory):
    await factory.books([{"title": f"Book {i:03d}"} for i in range(105)])
    body = (await client.get(BOOKS, params={"limit": 500})).json()
    assert body["count"] == 105
    assert len(body["results"]) == 100
    assert "limit=100" in body["next"]
    assert "offset=100" in body["next"]
    rest = (await client.get(body["next"])).json()
    assert len(rest["results"]) == 5
    assert rest["next"] is None


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": -1}, {"limit": "ten"}, {"offset": -1}, {"offset": "x"}],
)
async def test_invalid_pagination_is_422(client, params):
    response = await client.get(BOOKS, params=params)
    assert response.status_code == 422, response.text


async def test_huge_pagination_values_are_not_a_500(client, factory):
    await factory.books([{"title": "Only"}])
    response = await client.get(BOOKS, params={"limit": 10**30})
    assert response.status_code in {200, 422}, response.text
    response = await client.get(BOOKS, params={"offset": 10**30})
    assert response.status_code == 422, response.text


async def test_pages_start_at_most_max_offset_rows_in(client, factory, monkeypatch):
    monkeypatch.setattr(pagination, "MAX_OFFSET", 4)
    await factory.books([{"title": f"Book {i}"} for i in range(9)])
    last_served = (await client.get(BOOKS, params={"limit": 2, "offset": 2})).json()
    assert "offset=4" in last_served["next"]
    deepest = (await client.get(BOOKS, params={"limit": 2, "offset": 4})).json()
    assert len(deepest["results"]) == 2
    assert deepest["count"] == 9
    assert deepest["next"] is None  # offset 6 is past the cap: no link to a page refused
    assert (await client.get(BOOKS, params={"offset": 10_001})).status_code == 422


async def test_offset_past_the_end(client, factory):
    await factory.books([{"title": f"Book {i}", "inventory": i % 2} for i in range(7)])
    body = (await client.get(BOOKS, params={"offset": 50})).json()
    assert body["count"] == 7
    assert body["results"] == []
    assert body["next"] is None
    assert body["previous"] is not None
    filtered = (await client.get(BOOKS, params={"offset": 50, "available": "true"})).json()
    assert filtered["count"] == 3
    assert filtered["results"] == []
