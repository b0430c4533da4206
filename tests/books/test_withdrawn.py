"""Withdrawn books: out of circulation (neither lent nor held), out of the default catalogue,
yet returns of their copies are still recorded. Withdrawing cancels the book's open holds,
with a staff message each, and a copy put aside goes back on the shelf."""

from __future__ import annotations

from typing import Any

import pytest

from library_service.models import Book, Borrowing, Hold, Notification
from tests.factories import (
    BOOK_FIELDS,
    assert_error,
    assert_refused,
    copies,
    count,
    day,
    fetch,
    holds_of,
    inventory,
    notification_texts,
)

BOOKS = "/api/books/"


def detail(book_id: int) -> str:
    return f"{BOOKS}{book_id}/"


@pytest.fixture
async def staff(factory) -> dict[str, str]:
    return factory.auth(await factory.staff())


async def set_withdrawn(client, staff, book: Book, withdrawn: bool, **fields: Any) -> Any:
    r = await client.patch(detail(book.id), json={"withdrawn": withdrawn, **fields}, headers=staff)
    assert r.status_code == 200, r.text
    assert r.json()["withdrawn"] is withdrawn
    return r.json()


def titles(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [book["title"] for book in response.json()["results"]]


# -- the flag -------------------------------------------------------------------------------


async def test_staff_withdraw_a_book_with_patch(client, factory, db, staff):
    book = await factory.book(inventory=2)
    body = await set_withdrawn(client, staff, book, True)
    assert body["inventory"] == 2
    assert (await fetch(db, Book, book.id)).withdrawn is True


async def test_staff_withdraw_a_book_with_put(client, factory, db, staff):
    book = await factory.book(inventory=2)
    payload = {**BOOK_FIELDS, "inventory": 2, "withdrawn": True}
    r = await client.put(detail(book.id), json=payload, headers=staff)
    assert r.status_code == 200, r.text
    assert r.json()["withdrawn"] is True
    row = await fetch(db, Book, book.id)
    assert (row.withdrawn, row.inventory) == (True, 2)


async def test_a_new_book_is_in_circulation(client, staff):
    r = await client.post(BOOKS, json=BOOK_FIELDS, headers=staff)
    assert r.status_code == 201, r.text
    assert r.json()["withdrawn"] is False


@pytest.mark.parametrize(
    ("role", "status", "code"),
    [("anonymous", 401, "not_authenticated"), ("member", 403, "permission_denied")],
)
async def test_only_staff_withdraw_books(client, factory, db, role, status, code):
    book = await factory.book(inventory=1)
    headers = factory.auth(await factory.member()) if role == "member" else {}
    r = await client.patch(detail(book.id), json={"withdrawn": True}, headers=headers)
    assert_error(r, status, code)
    assert (await fetch(db, Book, book.id)).withdrawn is False


# -- out of circulation ---------------------------------------------------------------------


async def test_a_withdrawn_book_is_neither_lent_nor_held(
    client, factory, db, sandbox, frozen_today, staff
):
    member = await factory.member()
    book = await factory.book(inventory=2)
    await set_withdrawn(client, staff, book, True)
    borrowing = factory.borrow(client, member, book, days=3)
    await assert_refused(db, sandbox, borrowing, 400, "book_withdrawn")
    hold = factory.place_hold(client, member, book)
    await assert_refused(db, sandbox, hold, 400, "book_withdrawn")
    assert await count(db, Borrowing) == 0
    assert await count(db, Hold) == 0
    assert await inventory(db, book.id) == 2


async def test_the_catalogue_leaves_withdrawn_books_out(client, factory, staff):
    _, persuasion, _ = await factory.books(
        [{"title": "Emma"}, {"title": "Persuasion"}, {"title": "Sanditon"}]
    )
    await set_withdrawn(client, staff, persuasion, True)

    assert titles(await client.get(BOOKS)) == ["Emma", "Sanditon"]
    r = await client.get(BOOKS)
    assert r.json()["count"] == 2
    withdrawn = await client.get(f"{BOOKS}?withdrawn=true")
    assert titles(withdrawn) == ["Persuasion"]
    assert withdrawn.json()["count"] == 1
    assert titles(await client.get(f"{BOOKS}?withdrawn=false")) == ["Emma", "Sanditon"]
    assert titles(await client.get(f"{BOOKS}?search=persuasion")) == []
    assert titles(await client.get(f"{BOOKS}?search=persuasion&withdrawn=true")) == ["Persuasion"]
    # the book itself can still be read, as can the borrowings that name it
    r = await client.get(detail(persuasion.id))
    assert r.status_code == 200, r.text
    assert r.json()["withdrawn"] is True


async def test_reinstating_puts_the_book_back_in_circulation(
    client, factory, db, frozen_today, staff
):
    member = await factory.member()
    book = await factory.book(inventory=1, title="Emma")
    await set_withdrawn(client, staff, book, True)
    assert titles(await client.get(BOOKS)) == []

    await set_withdrawn(client, staff, book, False)
    assert titles(await client.get(BOOKS)) == ["Emma"]
    assert titles(await client.get(f"{BOOKS}?withdrawn=true")) == []
    await factory.borrow_ok(client, member, book, days=3)
    assert await inventory(db, book.id) == 0


@pytest.mark.parametrize("days_late", [0, 2])
async def test_returns_of_a_withdrawn_books_copies_are_recorded(
    client, factory, db, staff, days_late
):
    member = await factory.member()
    book = await factory.book(inventory=1)
    loan = await factory.borrow_ok(client, member, book, days=4, on=0)
    await set_withdrawn(client, staff, book, True)

    r = await factory.return_book(client, member, loan["id"], on=4 + days_late)
    assert r.status_code == 200, r.text
    assert r.json()["actual_return_date"] == day(4 + days_late).isoformat()
    assert (await fetch(db, Borrowing, loan["id"])).actual_return_date == day(4 + days_late)
    assert await inventory(db, book.id) == 1
    fines = [p for p in r.json()["payments"] if p["type"] == "FINE"]
    assert len(fines) == (1 if days_late else 0)


async def test_staff_adding_copies_of_a_withdrawn_book_put_them_on_the_shelf(
    client, factory, db, staff
):
    book = await factory.book(inventory=0, withdrawn=True)
    await factory.hold(await factory.member(), book, status="CANCELLED")
    r = await client.patch(detail(book.id), json={"inventory": 2}, headers=staff)
    assert r.status_code == 200, r.text
    assert await inventory(db, book.id) == 2


# -- its holds ------------------------------------------------------------------------------


async def test_withdrawing_cancels_the_open_holds_with_a_message_each(
    client, factory, db, frozen_today, staff
):
    ready_member = await factory.member(email="ready@example.com")
    waiting_members = [await factory.member(email=f"w{i}@example.com") for i in range(2)]
    book = await factory.book(inventory=0, title="Emma")
    other_book = await factory.book(inventory=0, title="Persuasion")
    collected = await factory.hold(
        ready_member,
        book,
        status="FULFILLED",
        ready_until=day(-3),
        borrowing=await factory.borrowing(ready_member, book, borrowed=day(-4), due=day(3)),
    )
    ready = await factory.hold(ready_member, book, status="READY", ready_until=day(2))
    waiting = [await factory.hold(m, book) for m in waiting_members]
    elsewhere = await factory.hold(waiting_members[0], other_book)

    body = await set_withdrawn(client, staff, book, True)

    assert [(h.id, h.status) for h in await holds_of(db, book.id)] == [
        (collected.id, "FULFILLED"),
        (ready.id, "CANCELLED"),
        (waiting[0].id, "CANCELLED"),
        (waiting[1].id, "CANCELLED"),
    ]
    assert all(h.closed_at is not None for h in (await holds_of(db, book.id))[1:])
    assert (await fetch(db, Hold, elsewhere.id)).status == "WAITING"
    # the copy put aside for the READY hold is back on the shelf
    assert body["inventory"] == 1
    assert await copies(db, book.id) == {"shelf": 1, "on_loan": 1, "ready": 0}
    assert await notification_texts(db, "hold_cancelled") == [
        f"🚫 Hold #{ready.id} cancelled: «Emma» was withdrawn; tell ready@example.com"
        " (a copy was put aside for them: back on the shelf)",
        f"🚫 Hold #{waiting[0].id} cancelled: «Emma» was withdrawn; tell w0@example.com",
        f"🚫 Hold #{waiting[1].id} cancelled: «Emma» was withdrawn; tell w1@example.com",
    ]
    assert await notification_texts(db, "hold_ready") == []


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
async def test_a_copy_put_aside_goes_back_on_the_shelf_whatever_inventory_staff_send(
    client, factory, db, frozen_today, staff, method
):
    """Staff send the shelf count they see (0) with the flag: the copy put aside for the
    cancelled READY hold is added to it, not lost."""
    book = await factory.book(inventory=0)
    await factory.hold(await factory.member(), book, status="READY", ready_until=day(2))
    payload = {**BOOK_FIELDS, "inventory": 0, "withdrawn": True}
    if method == "PATCH":
        payload = {"inventory": 0, "withdrawn": True}
    r = await client.request(method, detail(book.id), json=payload, headers=staff)
    assert r.status_code == 200, r.text
    assert r.json()["inventory"] == 1
    assert await inventory(db, book.id) == 1


async def test_copies_added_while_withdrawing_go_on_the_shelf_with_the_one_put_aside(
    client, factory, db, frozen_today, staff
):
    book = await factory.book(inventory=0)
    await factory.hold(await factory.member(), book, status="READY", ready_until=day(2))
    await factory.hold(await factory.member(), book)
    await set_withdrawn(client, staff, book, True, inventory=2)
    assert await copies(db, book.id) == {"shelf": 3, "on_loan": 0, "ready": 0}
    assert [h.status for h in await holds_of(db, book.id)] == ["CANCELLED", "CANCELLED"]


async def test_withdrawing_again_cancels_nothing_more(client, factory, db, frozen_today, staff):
    book = await factory.book(inventory=0)
    await factory.hold(await factory.member(), book, status="READY", ready_until=day(2))
    await set_withdrawn(client, staff, book, True)
    messages = await count(db, Notification)
    await set_withdrawn(client, staff, book, True)
    await set_withdrawn(client, staff, book, True, title="Emma, again")
    assert await count(db, Notification) == messages
    assert await inventory(db, book.id) == 1


async def test_a_return_of_a_withdrawn_book_goes_to_the_shelf_not_to_a_queue(
    client, factory, db, frozen_today, staff
):
    reader, member = await factory.member(), await factory.member()
    book = await factory.book(inventory=1)
    loan = await factory.borrow_ok(client, reader, book, days=4)
    hold = await factory.place_hold_ok(client, member, book)
    await set_withdrawn(client, staff, book, True)
    assert (await fetch(db, Hold, hold["id"])).status == "CANCELLED"
    r = await factory.return_book(client, reader, loan["id"], on=1)
    assert r.status_code == 200, r.text
    assert await inventory(db, book.id) == 1
    assert await notification_texts(db, "hold_ready") == []
