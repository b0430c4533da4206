"""POST /api/borrowings/{id}/return/: once, by the member or staff, restoring the copy."""

from __future__ import annotations

from datetime import date

import pytest

from library_service.models import Borrowing
from tests.factories import (
    assert_refused,
    day,
    fetch,
    inventory,
    on_day,
    payments_of,
    snapshot,
)


async def borrowed(client, factory, member, book) -> int:
    """The id of a borrowing made on day 0, due on day 4 (2026-03-05)."""
    return int((await factory.borrow_ok(client, member, book, days=4, on=0))["id"])


@pytest.mark.parametrize(("returned_on", "label"), [(2, "early"), (4, "on time")])  # due on day 4
async def test_return_sets_date_and_restores_inventory(
    client, factory, db, sandbox, returned_on, label
):
    member = await factory.member()
    book = await factory.book(inventory=2)
    borrowing_id = await borrowed(client, factory, member, book)
    assert await inventory(db, book.id) == 1
    r = await factory.return_book(client, member, borrowing_id, on=returned_on)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == borrowing_id
    assert body["actual_return_date"] == day(returned_on).isoformat()
    assert body["is_active"] is False
    assert body["book"]["inventory"] == 2
    assert [p["type"] for p in body["payments"]] == ["PAYMENT"], label  # no fine
    assert await inventory(db, book.id) == 2
    row = await fetch(db, Borrowing, borrowing_id)
    assert row.actual_return_date == day(returned_on)
    assert [p.type for p in await payments_of(db)] == ["PAYMENT"]


async def test_second_return_is_refused(client, factory, db, sandbox):
    member = await factory.member()
    book = await factory.book(inventory=2)
    borrowing_id = await borrowed(client, factory, member, book)
    r = await factory.return_book(client, member, borrowing_id, on=2)
    assert r.status_code == 200, r.text
    # on day 9 it would be late, if it were still active
    again = factory.return_book(client, member, borrowing_id, on=9)
    after = await assert_refused(db, sandbox, again, 400, "already_returned")
    assert after["books"][book.id] == 2
    row = await fetch(db, Borrowing, borrowing_id)
    assert row.actual_return_date == date(2026, 3, 3)
    assert [p.type for p in await payments_of(db)] == ["PAYMENT"]


async def test_return_of_another_members_borrowing_is_404(client, factory, db, sandbox):
    owner = await factory.member()
    intruder = await factory.member()
    book = await factory.book(inventory=2)
    borrowing_id = await borrowed(client, factory, owner, book)
    before = await snapshot(db, sandbox)
    with on_day(10):  # late: no fine may appear either
        r = await factory.return_book(client, intruder, borrowing_id)
        missing = await factory.return_book(client, intruder, borrowing_id + 1000)
    assert r.status_code == 404, r.text
    assert missing.status_code == 404
    assert r.json() == missing.json()
    assert await snapshot(db, sandbox) == before
    assert (await fetch(db, Borrowing, borrowing_id)).actual_return_date is None
    assert await inventory(db, book.id) == 1


async def test_return_requires_authentication(client, factory, db, sandbox):
    owner = await factory.member()
    book = await factory.book(inventory=2)
    borrowing_id = await borrowed(client, factory, owner, book)
    before = await snapshot(db, sandbox)
    r = await factory.return_book(client, {}, borrowing_id)
    assert r.status_code == 401, r.text
    assert await snapshot(db, sandbox) == before


async def test_staff_may_return_anyones_borrowing(client, factory, db):
    owner = await factory.member()
    staff = await factory.staff()
    book = await factory.book(inventory=1)
    borrowing_id = await borrowed(client, factory, owner, book)
    assert await inventory(db, book.id) == 0
    r = await factory.return_book(client, staff, borrowing_id, on=1)
    assert r.status_code == 200, r.text
    assert r.json()["user_id"] == owner.id
    assert r.json()["actual_return_date"] == "2026-03-02"
    assert await inventory(db, book.id) == 1
    assert (await fetch(db, Borrowing, borrowing_id)).actual_return_date == date(2026, 3, 2)


@pytest.mark.parametrize("bad_id", ["0", "abc", str(2**31)])
async def test_return_bad_id_is_not_a_500(client, factory, bad_id):
    member = await factory.member()
    r = await client.post(f"/api/borrowings/{bad_id}/return/", headers=factory.auth(member))
    assert r.status_code in {404, 422}, r.text
