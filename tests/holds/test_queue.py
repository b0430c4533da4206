"""Where a freed copy goes, how it is collected, and leaving the queue.

A copy freed by a return, by staff raising the inventory, or by a READY hold cancelled or
expired goes to the oldest WAITING hold of its book, which is READY until library today +
HOLD_PICKUP_DAYS; only when nobody waits does it go back on the shelf. Day 0 is 2026-03-01."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from library_service.models import Borrowing, Hold, Notification
from tests.factories import (
    assert_error,
    assert_refused,
    copies,
    count,
    day,
    expire_holds,
    fetch,
    holds_of,
    inventory,
    notification_texts,
    on_day,
    snapshot,
    the_payment,
)

EVENTS = ["return", "inventory raised", "ready hold cancelled", "ready hold expired"]


async def arrange(client, factory, *, waiting: int) -> dict[str, Any]:
    """Emma's one copy is out: lent to a reader (due day 5) and, for the hold events, a
    second copy put aside for `first` until day 3; `waiting` members queue behind."""
    staff = await factory.staff()
    reader, first = await factory.member(), await factory.member()
    book = await factory.book(inventory=1, title="Emma")
    loan = await factory.borrow_ok(client, reader, book, days=5, on=0)
    ready = await factory.hold(first, book, status="READY", ready_until=day(3))
    queue = [await factory.member() for _ in range(waiting)]
    holds = [(await factory.place_hold_ok(client, m, book, on=0))["id"] for m in queue]
    return {
        "staff": staff,
        "reader": reader,
        "first": first,
        "book": book,
        "loan": loan,
        "ready": ready,
        "queue": queue,
        "holds": holds,
    }


async def free_a_copy(client, factory, app, db, settings, event: str, s: dict[str, Any]) -> None:
    """On day 4, one copy of the book becomes free by `event`."""
    if event == "return":
        r = await factory.return_book(client, s["reader"], s["loan"]["id"], on=4)
        assert r.status_code == 200, r.text
    elif event == "inventory raised":
        with on_day(4):
            url = f"/api/books/{s['book'].id}/"
            r = await client.patch(url, json={"inventory": 1}, headers=factory.auth(s["staff"]))
        assert r.status_code == 200, r.text
    elif event == "ready hold cancelled":
        r = await factory.cancel_hold(client, s["first"], s["ready"].id, on=4)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "CANCELLED"
    else:
        assert await expire_holds(app, db, settings, on=4) == 1
        assert (await fetch(db, Hold, s["ready"].id)).status == "EXPIRED"


def total(where: dict[str, int]) -> int:
    return where["shelf"] + where["on_loan"] + where["ready"]


@pytest.mark.parametrize("event", EVENTS)
async def test_a_freed_copy_goes_to_the_oldest_waiting_hold(
    client, factory, app, db, settings, event
):
    s = await arrange(client, factory, waiting=2)
    before = await copies(db, s["book"].id)
    ready_messages = len(await notification_texts(db, "hold_ready"))

    await free_a_copy(client, factory, app, db, settings, event, s)

    oldest, next_one = [await fetch(db, Hold, hold_id) for hold_id in s["holds"]]
    assert (oldest.status, oldest.ready_until) == ("READY", day(7))  # day 4 + 3 pickup days
    assert (next_one.status, next_one.ready_until) == ("WAITING", None)
    assert await inventory(db, s["book"].id) == 0  # the shelf does not grow
    after = await copies(db, s["book"].id)
    assert total(after) == total(before) + (event == "inventory raised")

    texts = await notification_texts(db, "hold_ready")
    assert len(texts) == ready_messages + 1
    assert f"Put aside «Emma» for {s['queue'][0].email} until 2026-03-08" in texts[-1]

    # what the members see
    r = await client.get(f"/api/holds/{s['holds'][0]}/", headers=factory.auth(s["queue"][0]))
    assert (r.json()["status"], r.json()["ready_until"]) == ("READY", "2026-03-08")
    r = await client.get(f"/api/holds/{s['holds'][1]}/", headers=factory.auth(s["queue"][1]))
    assert (r.json()["status"], r.json()["position"]) == ("WAITING", 1)


@pytest.mark.parametrize("event", EVENTS)
async def test_with_nobody_waiting_a_freed_copy_goes_back_on_the_shelf(
    client, factory, app, db, settings, event
):
    s = await arrange(client, factory, waiting=0)
    before = await copies(db, s["book"].id)
    await free_a_copy(client, factory, app, db, settings, event, s)
    assert await inventory(db, s["book"].id) == 1
    after = await copies(db, s["book"].id)
    assert total(after) == total(before) + (event == "inventory raised")
    assert await notification_texts(db, "hold_ready") == []


async def test_copies_added_by_staff_serve_the_queue_first_then_the_shelf(
    client, factory, db, frozen_today
):
    staff = factory.auth(await factory.staff())
    book = await factory.book(inventory=0, title="Emma")
    queue = [await factory.member() for _ in range(2)]
    holds = [(await factory.place_hold_ok(client, m, book))["id"] for m in queue]

    r = await client.patch(f"/api/books/{book.id}/", json={"inventory": 3}, headers=staff)
    assert r.status_code == 200, r.text
    assert r.json()["inventory"] == 1  # two copies put aside, one on the shelf
    assert await inventory(db, book.id) == 1
    assert [(h.id, h.status, h.ready_until) for h in await holds_of(db, book.id)] == [
        (holds[0], "READY", day(3)),
        (holds[1], "READY", day(3)),
    ]
    texts = await notification_texts(db, "hold_ready")
    assert [queue[0].email in texts[0], queue[1].email in texts[1]] == [True, True]


async def test_the_pickup_days_setting_is_honoured(
    client, factory, db, settings, monkeypatch, frozen_today
):
    monkeypatch.setattr(settings, "HOLD_PICKUP_DAYS", 5)
    reader, member = await factory.member(), await factory.member()
    book = await factory.book(inventory=1)
    loan = await factory.borrow_ok(client, reader, book, days=5)
    hold = await factory.place_hold_ok(client, member, book)
    r = await factory.return_book(client, reader, loan["id"], on=2)
    assert r.status_code == 200, r.text
    assert (await fetch(db, Hold, hold["id"])).ready_until == day(7)


async def test_a_return_serves_only_its_own_books_queue(client, factory, db, frozen_today):
    reader, member = await factory.member(), await factory.member()
    emma, persuasion = await factory.books(
        [{"inventory": 1, "title": "Emma"}, {"inventory": 0, "title": "Persuasion"}]
    )
    loan = await factory.borrow_ok(client, reader, emma, days=5)
    hold = await factory.place_hold_ok(client, member, persuasion)
    r = await factory.return_book(client, reader, loan["id"], on=1)
    assert r.status_code == 200, r.text
    assert (await fetch(db, Hold, hold["id"])).status == "WAITING"
    assert await inventory(db, emma.id) == 1


# -- collecting a copy put aside ---------------------------------------------------------------


@pytest.mark.parametrize("on_shelf", [0, 2])
async def test_the_member_of_a_ready_hold_borrows_the_copy_put_aside(
    client, factory, db, sandbox, frozen_today, on_shelf
):
    """The held copy is already off the shelf: the shelf count does not move, even when
    other copies are on it."""
    member = await factory.member()
    book = await factory.book(inventory=on_shelf, daily_fee=Decimal("1.50"))
    hold = await factory.hold(member, book, status="READY", ready_until=day(2))

    borrowing = await factory.borrow_ok(client, member, book, days=4)

    assert await inventory(db, book.id) == on_shelf
    row = await fetch(db, Hold, hold.id)
    assert (row.status, row.borrowing_id) == ("FULFILLED", borrowing["id"])
    assert row.closed_at is not None
    assert the_payment(borrowing)["money_to_pay"] == "6.00"  # charged as any borrowing
    assert (await fetch(db, Borrowing, borrowing["id"])).user_id == member.id
    r = await client.get(f"/api/holds/{hold.id}/", headers=factory.auth(member))
    assert (r.json()["status"], r.json()["borrowing_id"]) == ("FULFILLED", borrowing["id"])
    assert await copies(db, book.id) == {"shelf": on_shelf, "on_loan": 1, "ready": 0}


async def test_a_copy_put_aside_is_nobody_elses(client, factory, db, sandbox, frozen_today):
    holder, waiting, stranger = [await factory.member() for _ in range(3)]
    book = await factory.book(inventory=0)
    await factory.hold(holder, book, status="READY", ready_until=day(2))
    await factory.hold(waiting, book)
    for member in (stranger, waiting):
        request = factory.borrow(client, member, book, days=3)
        await assert_refused(db, sandbox, request, 400, "book_unavailable")
    assert await copies(db, book.id) == {"shelf": 0, "on_loan": 0, "ready": 1}


async def test_a_refused_collection_keeps_the_copy_put_aside(
    client, factory, db, sandbox, settings, monkeypatch, frozen_today
):
    monkeypatch.setattr(settings, "MAX_ACTIVE_BORROWINGS", 1)
    member = await factory.member()
    other_book, book = await factory.books([{"inventory": 1}, {"inventory": 0}])
    await factory.borrowing(member, other_book, due=day(5))
    hold = await factory.hold(member, book, status="READY", ready_until=day(2))
    request = factory.borrow(client, member, book, days=3)
    await assert_refused(db, sandbox, request, 400, "loan_limit_reached")
    assert (await fetch(db, Hold, hold.id)).status == "READY"


# -- leaving the queue -------------------------------------------------------------------------


async def test_cancelling_a_waiting_hold_moves_nothing_else(client, factory, db, frozen_today):
    ann, bob = await factory.member(), await factory.member()
    reader = await factory.member()
    book = await factory.book(inventory=0)
    await factory.borrowing(reader, book, due=day(5))
    ann_hold = await factory.place_hold_ok(client, ann, book)
    bob_hold = await factory.place_hold_ok(client, bob, book)
    before = await copies(db, book.id)
    messages = await count(db, Notification)

    r = await factory.cancel_hold(client, ann, ann_hold["id"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "CANCELLED"
    assert r.json()["position"] is None

    assert [(h.id, h.status) for h in await holds_of(db, book.id)] == [
        (ann_hold["id"], "CANCELLED"),
        (bob_hold["id"], "WAITING"),
    ]
    assert (await fetch(db, Hold, ann_hold["id"])).closed_at is not None
    assert await copies(db, book.id) == before
    assert await count(db, Notification) == messages
    r = await client.get(f"/api/holds/{bob_hold['id']}/", headers=factory.auth(bob))
    assert r.json()["position"] == 1


async def test_staff_cancel_any_members_hold(client, factory, db, frozen_today):
    staff = await factory.staff()
    ann, bob = await factory.member(), await factory.member()
    book = await factory.book(inventory=0, title="Emma")
    ready = await factory.hold(ann, book, status="READY", ready_until=day(2))
    waiting = await factory.place_hold_ok(client, bob, book)

    r = await factory.cancel_hold(client, staff, ready.id)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "CANCELLED"
    assert r.json()["user_id"] == ann.id
    row = await fetch(db, Hold, waiting["id"])
    assert (row.status, row.ready_until) == ("READY", day(3))
    assert await inventory(db, book.id) == 0
    [text] = await notification_texts(db, "hold_ready")
    assert f"Put aside «Emma» for {bob.email} until 2026-03-04" in text


@pytest.mark.parametrize("status", ["FULFILLED", "CANCELLED", "EXPIRED"])
async def test_a_closed_hold_cannot_be_cancelled(
    client, factory, db, sandbox, frozen_today, status
):
    member = await factory.member()
    book = await factory.book(inventory=0)
    hold = await factory.hold(member, book, status=status, ready_until=day(-1))
    await factory.hold(await factory.member(), book)  # someone waits: nothing may move
    request = factory.cancel_hold(client, member, hold.id)
    await assert_refused(db, sandbox, request, 400, "hold_closed")


async def test_cancelling_twice(client, factory, db, sandbox, frozen_today):
    member = await factory.member()
    book = await factory.book(inventory=0)
    hold = await factory.place_hold_ok(client, member, book)
    assert (await factory.cancel_hold(client, member, hold["id"])).status_code == 200
    request = factory.cancel_hold(client, member, hold["id"])
    await assert_refused(db, sandbox, request, 400, "hold_closed")


async def test_a_member_cannot_cancel_another_members_hold(
    client, factory, db, sandbox, frozen_today
):
    ann, bob = await factory.member(), await factory.member()
    book = await factory.book(inventory=0)
    hold = await factory.hold(ann, book, status="READY", ready_until=day(2))
    await factory.hold(bob, book)
    request = factory.cancel_hold(client, bob, hold.id)
    await assert_refused(db, sandbox, request, 404, "hold_not_found")
    assert (await fetch(db, Hold, hold.id)).status == "READY"


async def test_anonymous_cannot_cancel(client, factory, db, sandbox, frozen_today):
    book = await factory.book(inventory=0)
    hold = await factory.hold(await factory.member(), book)
    before = await snapshot(db, sandbox)
    assert_error(await factory.cancel_hold(client, {}, hold.id), 401, "not_authenticated")
    assert await snapshot(db, sandbox) == before
