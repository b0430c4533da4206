"""The catalogue's management, staff only: creating, replacing, patching, deleting, and
what a book's fields accept."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from library_service.models import Book
from tests.factories import BOOK_FIELDS, assert_error, count, fetch

BOOKS = "/api/books/"
VALID = BOOK_FIELDS
NEXT_YEAR = date.today().year + 1
COLUMNS = ("title", "author", "cover", "inventory", "daily_fee", "isbn", "year", "description")


def detail(book_id: int | str) -> str:
    return f"{BOOKS}{book_id}/"


async def snapshot(db, book_id: int) -> dict[str, Any]:
    book = await fetch(db, Book, book_id)
    return {column: getattr(book, column) for column in COLUMNS}


async def book_exists(db, book_id: int) -> bool:
    return await count(db, Book, Book.id == book_id) == 1


@pytest.fixture
async def staff(factory) -> dict[str, str]:
    return factory.auth(await factory.staff())


# --- permissions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status", "code"),
    [("anonymous", 401, "not_authenticated"), ("member", 403, "permission_denied")],
)
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_writes_are_staff_only(client, factory, db, role, status, code, method):
    book = await factory.book(title="Original")
    headers = factory.auth(await factory.member()) if role == "member" else {}
    url = BOOKS if method == "POST" else detail(book.id)
    payload = None if method == "DELETE" else {**VALID, "title": "Changed"}
    response = await client.request(method, url, json=payload, headers=headers)
    assert_error(response, status, code)
    if status == 401:
        assert "www-authenticate" in response.headers
    assert await count(db, Book) == 1
    assert (await snapshot(db, book.id))["title"] == "Original"


async def test_staff_creates_book(client, db, staff):
    payload = {
        **VALID,
        "isbn": "978-0-14-143951-8",
        "year": 1815,
        "description": "A comedy of manners.",
    }
    response = await client.post(BOOKS, json=payload, headers=staff)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body == {
        "id": body["id"],
        "title": "Emma",
        "author": "Jane Austen",
        "cover": "HARD",
        "inventory": 3,
        "daily_fee": "1.50",
        "isbn": "9780141439518",
        "year": 1815,
        "description": "A comedy of manners.",
        "withdrawn": False,
    }
    assert await snapshot(db, body["id"]) == {
        "title": "Emma",
        "author": "Jane Austen",
        "cover": "HARD",
        "inventory": 3,
        "daily_fee": Decimal("1.50"),
        "isbn": "9780141439518",
        "year": 1815,
        "description": "A comedy of manners.",
    }
    fetched = await client.get(detail(body["id"]))
    assert fetched.json() == body


async def test_staff_replaces_book(client, db, factory, staff):
    book = await factory.book(isbn="9780141439518", year=1813, description="Old.")
    payload = {"title": "Persuasion", "author": "J. Austen", "cover": "HARD", "inventory": 0}
    response = await client.put(
        detail(book.id), json={**payload, "daily_fee": "0.75"}, headers=staff
    )
    assert response.status_code == 200, response.text
    assert response.json()["id"] == book.id
    assert response.json()["daily_fee"] == "0.75"
    # PUT replaces: optional fields left out are cleared.
    assert await snapshot(db, book.id) == {
        **payload,
        "daily_fee": Decimal("0.75"),
        "isbn": None,
        "year": None,
        "description": None,
    }


async def test_put_requires_every_required_field(client, db, factory, staff):
    book = await factory.book(title="Original")
    response = await client.put(detail(book.id), json={"title": "Only title"}, headers=staff)
    assert response.status_code == 422, response.text
    assert (await snapshot(db, book.id))["title"] == "Original"


async def test_staff_patches_book(client, db, factory, staff):
    book = await factory.book(isbn="9780141439518", year=1813)
    before = await snapshot(db, book.id)
    response = await client.patch(
        detail(book.id), json={"inventory": 9, "daily_fee": "3.5"}, headers=staff
    )
    assert response.status_code == 200, response.text
    assert response.json()["inventory"] == 9
    assert response.json()["daily_fee"] == "3.50"
    assert await snapshot(db, book.id) == {
        **before,
        "inventory": 9,
        "daily_fee": Decimal("3.50"),
    }


async def test_patch_can_clear_optional_fields(client, db, factory, staff):
    book = await factory.book(isbn="9780141439518", year=1813, description="x")
    response = await client.patch(
        detail(book.id), json={"isbn": None, "year": None, "description": None}, headers=staff
    )
    assert response.status_code == 200, response.text
    stored = await snapshot(db, book.id)
    assert (stored["isbn"], stored["year"], stored["description"]) == (None, None, None)


@pytest.mark.parametrize("field", ["title", "author", "cover", "inventory", "daily_fee"])
async def test_patch_required_field_to_null_is_422(client, db, factory, staff, field):
    book = await factory.book()
    before = await snapshot(db, book.id)
    response = await client.patch(detail(book.id), json={field: None}, headers=staff)
    assert response.status_code == 422, response.text
    assert await snapshot(db, book.id) == before


async def test_staff_deletes_unborrowed_book(client, db, factory, staff):
    book = await factory.book()
    other = await factory.book(title="Other")
    response = await client.delete(detail(book.id), headers=staff)
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert not await book_exists(db, book.id)
    assert await book_exists(db, other.id)
    assert_error(await client.get(detail(book.id)), 404, "book_not_found")


@pytest.mark.parametrize(
    ("returned", "code"),
    [
        pytest.param([False], "book_has_active_borrowings", id="active"),
        # the active one is named, not the history
        pytest.param([True, False], "book_has_active_borrowings", id="active-and-returned"),
        # a returned borrowing keeps its book: the history must stay readable
        pytest.param([True], "book_has_history", id="only-returned"),
    ],
)
async def test_delete_book_with_borrowings_is_refused(client, db, factory, staff, returned, code):
    book = await factory.book()
    for was_returned in returned:
        end = date(2026, 1, 8) if was_returned else None
        await factory.borrowing(
            await factory.member(), book, borrowed=date(2026, 1, 5), returned=end
        )
    response = await client.delete(detail(book.id), headers=staff)
    assert_error(response, 400, code)
    assert await book_exists(db, book.id)


# --- validation -----------------------------------------------------------------------------

INVALID_FIELDS = [
    ("title", ""),
    ("title", "   "),
    ("title", "x" * 256),
    ("title", None),
    ("title", 123),
    ("author", ""),
    ("author", "  "),
    ("author", "x" * 256),
    ("author", None),
    ("cover", "PAPERBACK"),
    ("cover", "hard"),
    ("cover", ""),
    ("cover", None),
    ("inventory", -1),
    ("inventory", 1.5),
    ("inventory", "many"),
    ("inventory", None),
    ("daily_fee", "0"),
    ("daily_fee", 0),
    ("daily_fee", "0.00"),
    ("daily_fee", "-1.00"),
    ("daily_fee", -1),
    ("daily_fee", "1.005"),
    ("daily_fee", "0.001"),
    ("daily_fee", "123456789.12"),  # 11 digits, numeric(10,2) holds 10
    ("daily_fee", "1e12"),
    ("daily_fee", "NaN"),
    ("daily_fee", "Infinity"),
    ("daily_fee", "cheap"),
    ("daily_fee", None),
    ("isbn", "978-0-14-143951-9"),  # ISBN-13 with a wrong check digit
    ("isbn", "0-14-143951-4"),  # ISBN-10 with a wrong check digit
    ("isbn", "12345"),
    ("isbn", "abcdefghij"),
    ("isbn", "97801414395180"),
    ("isbn", ""),
    ("isbn", "9" * 30),
    ("year", 0),
    ("year", -5),
    ("year", NEXT_YEAR + 1),
    ("year", 40000),
    ("year", "old"),
    ("description", "x" * 5001),
]


@pytest.mark.parametrize(("field", "value"), INVALID_FIELDS)
async def test_create_with_invalid_field_is_422(client, db, staff, field, value):
    response = await client.post(BOOKS, json={**VALID, field: value}, headers=staff)
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], list)
    assert await count(db, Book) == 0


@pytest.mark.parametrize("field", ["title", "author", "cover", "inventory", "daily_fee"])
async def test_create_without_required_field_is_422(client, db, staff, field):
    payload = {key: value for key, value in VALID.items() if key != field}
    response = await client.post(BOOKS, json=payload, headers=staff)
    assert response.status_code == 422, response.text
    assert await count(db, Book) == 0


@pytest.mark.parametrize(
    ("method", "field", "value"),
    [("PATCH", field, value) for field, value in INVALID_FIELDS if value is not None]
    + [("PUT", field, value) for field, value in INVALID_FIELDS if field == "title"],
)
async def test_update_with_invalid_field_is_422(client, db, factory, staff, method, field, value):
    book = await factory.book(isbn="9780306406157")
    before = await snapshot(db, book.id)
    payload = {field: value} if method == "PATCH" else {**VALID, field: value}
    response = await client.request(method, detail(book.id), json=payload, headers=staff)
    assert response.status_code == 422, response.text
    assert await snapshot(db, book.id) == before


@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [
        ("title", "x" * 255, "x" * 255),
        ("author", "x" * 255, "x" * 255),
        ("cover", "SOFT", "SOFT"),
        ("inventory", 0, 0),
        ("daily_fee", "0.01", Decimal("0.01")),
        ("daily_fee", "1000.00", Decimal("1000.00")),  # the maximum
        ("year", 1, 1),
        ("year", NEXT_YEAR, NEXT_YEAR),
        ("year", 1450, 1450),
        ("description", "x" * 5000, "x" * 5000),
        ("description", "", ""),
    ],
)
async def test_create_accepts_boundary_values(client, db, staff, field, value, stored):
    response = await client.post(BOOKS, json={**VALID, field: value}, headers=staff)
    assert response.status_code == 201, response.text
    assert (await snapshot(db, response.json()["id"]))[field] == stored


async def test_create_with_nul_character_is_422_not_500(client, db, staff):
    response = await client.post(BOOKS, json={**VALID, "title": "Bad\x00Title"}, headers=staff)
    assert response.status_code == 422, response.text
    assert await count(db, Book) == 0


# --- money ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "shown"),
    [("1.5", "1.50"), (1.5, "1.50"), (2, "2.00"), ("0.1", "0.10"), ("10", "10.00")],
)
async def test_daily_fee_is_a_two_decimal_string(client, db, staff, sent, shown):
    response = await client.post(BOOKS, json={**VALID, "daily_fee": sent}, headers=staff)
    assert response.status_code == 201, response.text
    book_id = response.json()["id"]
    assert response.json()["daily_fee"] == shown
    assert (await client.get(detail(book_id))).json()["daily_fee"] == shown
    assert (await client.get(BOOKS)).json()["results"][0]["daily_fee"] == shown
    assert (await snapshot(db, book_id))["daily_fee"] == Decimal(shown)


# --- ISBN -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("978-0-14-143951-8", "9780141439518"),
        ("9780141439518", "9780141439518"),
        ("978 0 14 143951 8", "9780141439518"),
        ("0-14-143951-3", "0141439513"),
        ("0306406152", "0306406152"),
        ("0-8044-2957-X", "080442957X"),
        ("0-8044-2957-x", "080442957X"),
    ],
)
async def test_valid_isbn_is_stored_normalized(client, db, staff, sent, stored):
    response = await client.post(BOOKS, json={**VALID, "isbn": sent}, headers=staff)
    assert response.status_code == 201, response.text
    assert response.json()["isbn"] == stored
    assert (await snapshot(db, response.json()["id"]))["isbn"] == stored


async def test_duplicate_isbn_is_refused(client, db, factory, staff):
    await factory.book(isbn="9780141439518")
    response = await client.post(BOOKS, json={**VALID, "isbn": "978-0-14-143951-8"}, headers=staff)
    assert_error(response, 400, "isbn_taken")
    assert await count(db, Book) == 1


async def test_duplicate_isbn_10_with_lowercase_x_is_refused(client, db, staff):
    first = await client.post(BOOKS, json={**VALID, "isbn": "080442957X"}, headers=staff)
    assert first.status_code == 201, first.text
    response = await client.post(BOOKS, json={**VALID, "isbn": "0-8044-2957-x"}, headers=staff)
    assert_error(response, 400, "isbn_taken")
    assert await count(db, Book) == 1


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_update_to_taken_isbn_is_refused(client, db, factory, staff, method):
    await factory.book(isbn="9780141439518")
    book = await factory.book(title="Other", isbn="9780306406157")
    before = await snapshot(db, book.id)
    payload = (
        {**VALID, "isbn": "978-0-14-143951-8"} if method == "PUT" else {"isbn": "978-0-14-143951-8"}
    )
    response = await client.request(method, detail(book.id), json=payload, headers=staff)
    assert_error(response, 400, "isbn_taken")
    assert await snapshot(db, book.id) == before


async def test_update_keeping_own_isbn_is_allowed(client, db, factory, staff):
    book = await factory.book(isbn="9780141439518")
    response = await client.put(
        detail(book.id), json={**VALID, "isbn": "978-0-14-143951-8"}, headers=staff
    )
    assert response.status_code == 200, response.text
    assert (await snapshot(db, book.id))["title"] == "Emma"


# --- missing books and bad ids --------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_missing_book_is_404(client, factory, staff, method):
    book = await factory.book()
    payload = None if method in {"GET", "DELETE"} else VALID
    response = await client.request(method, detail(book.id + 1), json=payload, headers=staff)
    assert_error(response, 404, "book_not_found")


@pytest.mark.parametrize("book_id", ["99999999999", str(2**31), "0", "-1", "abc", "1.5"])
@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_out_of_range_or_malformed_id_is_422(client, staff, method, book_id):
    payload = None if method in {"GET", "DELETE"} else VALID
    response = await client.request(method, detail(book_id), json=payload, headers=staff)
    assert response.status_code == 422, response.text


async def test_largest_int32_id_is_just_not_found(client):
    response = await client.get(detail(2**31 - 1))
    assert_error(response, 404, "book_not_found")
