"""POST /api/holds/: a member joins the queue of a book with no copy on the shelf. Each
refusal answers its code and leaves every row (holds included) as it was."""

from __future__ import annotations

from decimal import Decimal

import pytest

from library_service.models import Hold
from tests.factories import (
    assert_refused,
    count,
    day,
    fetch,
    holds_of,
    inventory,
    snapshot,
)

# -- joining the queue ------------------------------------------------------------------------


async def test_members_join_the_queue_in_turn(client, factory, db, frozen_today):
    first, second = await factory.member(), await factory.member()
    book = await factory.book(inventory=0, title="Emma", daily_fee=Decimal("1.50"))

    r = await factory.place_hold(client, first, book)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "WAITING"
    assert body["position"] == 1
    assert body["user_id"] == first.id
    assert body["book"] == {
        "id": book.id,
        "title": "Emma",
        "author": "Jane Austen",
        "cover": "SOFT",
        "daily_fee": "1.50",
    }
    assert body["ready_until"] is None
    assert body["borrowing_id"] is None

    second_body = await factory.place_hold_ok(client, second, book)
    assert (second_body["status"], second_body["position"]) == ("WAITING", 2)

    rows = await holds_of(db, book.id)
    assert [(h.id, h.user_id, h.status) for h in rows] == [
        (body["id"], first.id, "WAITING"),
        (second_body["id"], second.id, "WAITING"),
    ]
    assert await inventory(db, book.id) == 0


async def test_positions_are_per_book(client, factory, db, frozen_today):
    first, second = await factory.member(), await factory.member()
    emma, persuasion = await factory.books(
        [{"inventory": 0, "title": "Emma"}, {"inventory": 0, "title": "Persuasion"}]
    )
    await factory.place_hold_ok(client, first, emma)
    hold = await factory.place_hold_ok(client, second, persuasion)
    assert hold["position"] == 1


async def test_a_hold_without_trailing_slash(client, factory, db, frozen_today):
    member = await factory.member()
    book = await factory.book(inventory=0)
    r = await client.post("/api/holds", json={"book": book.id}, headers=factory.auth(member))
    assert r.status_code == 201, r.text
    assert await count(db, Hold) == 1


async def test_a_member_may_queue_again_once_their_hold_is_closed(
    client, factory, db, frozen_today
):
    member = await factory.member()
    book = await factory.book(inventory=0)
    for status in ("FULFILLED", "CANCELLED", "EXPIRED"):
        await factory.hold(member, book, status=status, ready_until=day(-1))
    hold = await factory.place_hold_ok(client, member, book)
    assert (hold["status"], hold["position"]) == ("WAITING", 1)
    assert await count(db, Hold, Hold.user_id == member.id) == 4


# -- refusals change nothing ------------------------------------------------------------------


async def test_refused_while_a_copy_is_on_the_shelf(client, factory, db, sandbox, frozen_today):
    member = await factory.member()
    book = await factory.book(inventory=1)
    request = factory.place_hold(client, member, book)
    await assert_refused(db, sandbox, request, 400, "book_available")
    assert await count(db, Hold) == 0


@pytest.mark.parametrize("status", ["WAITING", "READY"])
async def test_refused_with_an_open_hold_on_the_book(
    client, factory, db, sandbox, frozen_today, status
):
    member = await factory.member()
    book = await factory.book(inventory=0)
    await factory.hold(member, book, status=status)
    request = factory.place_hold(client, member, book)
    await assert_refused(db, sandbox, request, 400, "already_on_hold")
    assert await count(db, Hold) == 1


async def test_refused_while_borrowing_the_book(client, factory, db, sandbox, frozen_today):
    member = await factory.member()
    book = await factory.book(inventory=1)
    await factory.borrow_ok(client, member, book, days=5)
    assert await inventory(db, book.id) == 0
    request = factory.place_hold(client, member, book)
    await assert_refused(db, sandbox, request, 400, "already_borrowing")
    assert await count(db, Hold) == 0


async def test_a_returned_loan_of_the_book_does_not_count(client, factory, db, frozen_today):
    member = await factory.member()
    book = await factory.book(inventory=0)
    await factory.borrowing(member, book, borrowed=day(-9), due=day(-2), returned=day(-3))
    hold = await factory.place_hold_ok(client, member, book)
    assert hold["status"] == "WAITING"


async def test_refused_at_the_hold_limit(
    client, factory, db, sandbox, settings, monkeypatch, frozen_today
):
    monkeypatch.setattr(settings, "MAX_ACTIVE_HOLDS", 2)
    member = await factory.member()
    books = await factory.books([{"inventory": 0, "title": f"Book {i}"} for i in range(4)])
    # closed holds do not count; WAITING and READY ones do
    await factory.hold(member, books[0], status="CANCELLED")
    await factory.hold(member, books[0], status="EXPIRED", ready_until=day(-1))
    await factory.place_hold_ok(client, member, books[1])
    await factory.hold(member, books[2], status="READY")

    request = factory.place_hold(client, member, books[3])
    await assert_refused(db, sandbox, request, 400, "hold_limit_reached")
    assert await count(db, Hold, Hold.book_id == books[3].id) == 0
    # other members' holds do not count towards it
    other = await factory.member()
    assert (await factory.place_hold_ok(client, other, books[3]))["position"] == 1


@pytest.mark.parametrize("status", ["PENDING", "EXPIRED"])
async def test_refused_with_an_unpaid_fine(client, factory, db, sandbox, frozen_today, status):
    member = await factory.member()
    old = await factory.book(inventory=1, title="Returned late")
    returned = await factory.borrowing(
        member, old, borrowed=day(-10), due=day(-5), returned=day(-2)
    )
    await factory.payment(returned, type="FINE", status=status, amount="9.00")
    book = await factory.book(inventory=0)
    request = factory.place_hold(client, member, book)
    await assert_refused(db, sandbox, request, 400, "unpaid_fines")
    assert await count(db, Hold) == 0


async def test_a_paid_fine_does_not_block(client, factory, db, frozen_today):
    member = await factory.member()
    old = await factory.book(inventory=1, title="Returned late")
    returned = await factory.borrowing(
        member, old, borrowed=day(-10), due=day(-5), returned=day(-2)
    )
    await factory.payment(returned, type="FINE", status="PAID", amount="9.00")
    book = await factory.book(inventory=0)
    assert (await factory.place_hold_ok(client, member, book))["status"] == "WAITING"


@pytest.mark.parametrize("copies", [0, 2])
async def test_refused_for_a_withdrawn_book(client, factory, db, sandbox, frozen_today, copies):
    member = await factory.member()
    book = await factory.book(inventory=copies, withdrawn=True)
    request = factory.place_hold(client, member, book)
    await assert_refused(db, sandbox, request, 400, "book_withdrawn")
    assert await count(db, Hold) == 0


async def test_unknown_book(client, factory, db, sandbox, frozen_today):
    member = await factory.member()
    await factory.book(inventory=0)
    request = factory.place_hold(client, member, 999_999)
    await assert_refused(db, sandbox, request, 404, "book_not_found")


async def test_anonymous_is_refused(client, factory, db, sandbox, frozen_today):
    book = await factory.book(inventory=0)
    before = await snapshot(db, sandbox)
    r = await factory.place_hold(client, {}, book)
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "not_authenticated"
    assert await snapshot(db, sandbox) == before


async def test_the_member_is_the_caller_whatever_the_body_says(client, factory, db, frozen_today):
    member, other = await factory.member(), await factory.member()
    book = await factory.book(inventory=0)
    payload = {"book": book.id, "user": other.id, "user_id": other.id}
    r = await client.post("/api/holds/", json=payload, headers=factory.auth(member))
    assert r.status_code == 201, r.text
    hold = await fetch(db, Hold, r.json()["id"])
    assert hold.user_id == member.id
    assert await count(db, Hold, Hold.user_id == other.id) == 0
