"""Reading borrowings: members see their own, staff see everyone's; nobody edits them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import event

from library_service.models import Borrowing
from tests.factories import day, fetch, payments_of, snapshot

URL = "/api/borrowings/"


@contextmanager
def count_statements(db) -> Iterator[list[str]]:
    statements: list[str] = []

    def before_cursor_execute(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield statements
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", before_cursor_execute)


# -- GET /api/borrowings/ ------------------------------------------------------------------------


async def _arrange_list(factory):
    """Two members and a staff user; member A has 3 loans (1 returned), B has 2 (both active),
    all borrowed on day 0 and due on day 7."""
    a = await factory.member()
    b = await factory.member()
    staff = await factory.staff()
    book = await factory.book(inventory=10, title="Listed", daily_fee=Decimal("2.25"))
    ids: dict[str, list[int]] = {"a": [], "b": []}
    plan = [("a", None), ("b", None), ("a", day(1)), ("b", None), ("a", None)]
    for who, returned in plan:
        borrowing = await factory.borrowing(a if who == "a" else b, book, returned=returned)
        ids[who].append(borrowing.id)
    return a, b, staff, book, ids


def _ids(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["results"]]


async def test_list_members_see_only_their_own_newest_first(client, factory, db, frozen_today):
    a, b, _, book, ids = await _arrange_list(factory)
    r = await client.get(URL, headers=factory.auth(a))
    assert _ids(r) == sorted(ids["a"], reverse=True)
    body = r.json()
    assert body["count"] == 3
    assert body["next"] is None
    assert body["previous"] is None
    for item in body["results"]:
        assert item["user_id"] == a.id
        assert item["book"] == {
            "id": book.id,
            "title": "Listed",
            "author": "Jane Austen",
            "cover": "SOFT",
            "daily_fee": "2.25",
        }
        assert item["borrow_date"] == "2026-03-01"
        assert item["expected_return_date"] == "2026-03-08"
        assert item["is_active"] is (item["actual_return_date"] is None)
    r = await client.get(URL, headers=factory.auth(b))
    assert _ids(r) == sorted(ids["b"], reverse=True)
    assert r.json()["count"] == 2


async def test_list_staff_see_all_and_filter_by_user(client, factory, db, frozen_today):
    a, b, staff, _, ids = await _arrange_list(factory)
    headers = factory.auth(staff)
    everyone = sorted(ids["a"] + ids["b"], reverse=True)
    r = await client.get(URL, headers=headers)
    assert _ids(r) == everyone
    assert r.json()["count"] == 5
    r = await client.get(URL, params={"user_id": b.id}, headers=headers)
    assert _ids(r) == sorted(ids["b"], reverse=True)
    assert r.json()["count"] == 2
    r = await client.get(URL, params={"user_id": a.id, "is_active": "true"}, headers=headers)
    assert _ids(r) == sorted([ids["a"][0], ids["a"][2]], reverse=True)
    r = await client.get(URL, params={"user_id": staff.id}, headers=headers)
    assert _ids(r) == []
    assert r.json()["count"] == 0


async def test_list_user_id_filter_is_ignored_for_members(client, factory, db, frozen_today):
    a, b, _, _, ids = await _arrange_list(factory)
    r = await client.get(URL, params={"user_id": b.id}, headers=factory.auth(a))
    assert _ids(r) == sorted(ids["a"], reverse=True)
    assert r.json()["count"] == 3
    assert all(item["user_id"] == a.id for item in r.json()["results"])


async def test_list_is_active_filter(client, factory, db, frozen_today):
    a, _, staff, _, ids = await _arrange_list(factory)
    r = await client.get(URL, params={"is_active": "true"}, headers=factory.auth(a))
    assert _ids(r) == [ids["a"][2], ids["a"][0]]
    assert all(
        item["is_active"] and item["actual_return_date"] is None for item in r.json()["results"]
    )
    r = await client.get(URL, params={"is_active": "false"}, headers=factory.auth(a))
    assert _ids(r) == [ids["a"][1]]
    item = r.json()["results"][0]
    assert item["is_active"] is False
    assert item["actual_return_date"] == "2026-03-02"
    r = await client.get(URL, params={"is_active": "false"}, headers=factory.auth(staff))
    assert _ids(r) == [ids["a"][1]]
    r = await client.get(URL, params={"is_active": "true"}, headers=factory.auth(staff))
    assert r.json()["count"] == 4


async def test_list_pagination_envelope(client, factory, db, frozen_today):
    a, _, _, _, ids = await _arrange_list(factory)
    headers = factory.auth(a)
    newest_first = sorted(ids["a"], reverse=True)

    r = await client.get(URL, params={"limit": 2}, headers=headers)
    body = r.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert _ids(r) == newest_first[:2]
    assert body["count"] == 3
    assert body["previous"] is None
    next_url = httpx.URL(body["next"])
    assert next_url.params["limit"] == "2"
    assert next_url.params["offset"] == "2"

    r = await client.get(body["next"], headers=headers)
    body = r.json()
    assert _ids(r) == newest_first[2:]
    assert body["count"] == 3
    assert body["next"] is None
    previous = httpx.URL(body["previous"])
    assert previous.params["offset"] == "0"

    r = await client.get(URL, params={"limit": 2, "offset": 10}, headers=headers)
    assert _ids(r) == []
    assert r.json()["count"] == 3


async def test_list_requires_authentication(client, factory, db, frozen_today):
    await _arrange_list(factory)
    r = await client.get(URL)
    assert r.status_code == 401, r.text


@pytest.mark.parametrize("params", [{"is_active": "maybe"}, {"limit": 0}, {"offset": -1}])
async def test_list_bad_query_is_422(client, factory, params):
    member = await factory.member()
    r = await client.get(URL, params=params, headers=factory.auth(member))
    assert r.status_code == 422, r.text


async def test_list_has_no_n_plus_one(client, factory, db, frozen_today):
    member = await factory.member()
    staff = await factory.staff()
    books = [await factory.book(inventory=50, title=f"T{i}") for i in range(3)]

    async def add(n: int) -> None:
        for i in range(n):
            borrowing = await factory.borrowing(member, books[i % 3], due=day(5))
            await factory.payment(borrowing)

    async def statements_for_list(headers: dict[str, str], expected_count: int) -> int:
        with count_statements(db) as statements:
            r = await client.get(URL, headers=headers)
        assert r.status_code == 200, r.text
        assert len(r.json()["results"]) == expected_count
        assert statements, "the listener saw no statement at all"
        return len(statements)

    await add(1)
    member_one = await statements_for_list(factory.auth(member), 1)
    staff_one = await statements_for_list(factory.auth(staff), 1)
    await add(19)
    member_twenty = await statements_for_list(factory.auth(member), 20)
    staff_twenty = await statements_for_list(factory.auth(staff), 20)
    print({"member": (member_one, member_twenty), "staff": (staff_one, staff_twenty)})
    assert member_twenty == member_one
    assert staff_twenty == staff_one


# -- GET /api/borrowings/{id}/ -------------------------------------------------------------------


async def test_read_own_borrowing_with_book_and_payments(client, factory, db, frozen_today):
    member = await factory.member()
    book = await factory.book(inventory=2, isbn="9780141439518", year=1813, description="Classic")
    r = await factory.borrow(client, member, book, days=3)
    assert r.status_code == 201, r.text
    created = r.json()
    r = await client.get(f"{URL}{created['id']}/", headers=factory.auth(member))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body == created
    assert body["book"] == {
        "id": book.id,
        "title": "Pride and Prejudice",
        "author": "Jane Austen",
        "cover": "SOFT",
        "inventory": 1,
        "daily_fee": "1.50",
        "isbn": "9780141439518",
        "year": 1813,
        "description": "Classic",
        "withdrawn": False,
    }
    rows = await payments_of(db, created["id"])
    assert [p["id"] for p in body["payments"]] == [p.id for p in rows]
    assert body["payments"][0]["money_to_pay"] == "4.50"
    # without the trailing slash too
    r = await client.get(f"{URL}{created['id']}", headers=factory.auth(member))
    assert r.status_code == 200, r.text
    assert r.json()["id"] == created["id"]


async def test_read_another_members_borrowing_is_404(client, factory, db, frozen_today):
    owner = await factory.member()
    intruder = await factory.member()
    book = await factory.book(inventory=2)
    borrowing_id = (await factory.borrowing(owner, book, due=day(3))).id
    r = await client.get(f"{URL}{borrowing_id}/", headers=factory.auth(intruder))
    assert r.status_code == 404, r.text
    missing = await client.get(f"{URL}{borrowing_id + 1000}/", headers=factory.auth(intruder))
    assert missing.status_code == 404
    assert r.json() == missing.json()  # existence is not revealed
    assert "id" not in r.json()


async def test_staff_read_anyones_borrowing(client, factory, db, frozen_today):
    owner = await factory.member()
    staff = await factory.staff()
    book = await factory.book(inventory=2)
    borrowing, payment = await factory.paid_borrowing(owner, book, due=day(3), amount="4.50")
    r = await client.get(f"{URL}{borrowing.id}/", headers=factory.auth(staff))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user_id"] == owner.id
    assert body["book"]["id"] == book.id
    assert [(p["id"], p["status"], p["money_to_pay"]) for p in body["payments"]] == [
        (payment.id, "PAID", "4.50")
    ]


async def test_read_borrowing_requires_authentication(client, factory, db, frozen_today):
    owner = await factory.member()
    book = await factory.book(inventory=2)
    borrowing_id = (await factory.borrowing(owner, book, due=day(3))).id
    r = await client.get(f"{URL}{borrowing_id}/")
    assert r.status_code == 401, r.text


@pytest.mark.parametrize("bad_id", ["0", "-1", "abc", str(2**31), str(10**30)])
async def test_read_borrowing_bad_id_is_not_a_500(client, factory, bad_id):
    member = await factory.member()
    r = await client.get(f"{URL}{bad_id}/", headers=factory.auth(member))
    assert r.status_code in {404, 422}, r.text


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_borrowings_cannot_be_edited_or_deleted(
    client, factory, db, sandbox, frozen_today, method
):
    owner = await factory.member()
    staff = await factory.staff()
    book = await factory.book(inventory=2)
    r = await factory.borrow(client, owner, book, days=3)
    assert r.status_code == 201, r.text
    borrowing_id = r.json()["id"]
    before = await snapshot(db, sandbox)
    payload = {"book": book.id, "expected_return_date": day(30).isoformat()}
    for headers in (factory.auth(owner), factory.auth(staff)):
        r = await client.request(
            method,
            f"{URL}{borrowing_id}/",
            headers=headers,
            json=None if method == "DELETE" else payload,
        )
        assert r.status_code == 405, r.text
    assert await snapshot(db, sandbox) == before
    row = await fetch(db, Borrowing, borrowing_id)
    assert row.expected_return_date == day(3)
