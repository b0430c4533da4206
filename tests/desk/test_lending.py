"""Lending at the desk: staff borrow for a member under the member's own rules, and every
staff change to a loan is on record."""

from __future__ import annotations

import asyncio

from library_service.models import Borrowing, Hold
from tests.factories import (
    assert_error,
    audit_entries,
    copies,
    count,
    day,
    fetch,
    notification_texts,
    snapshot,
    the_payment,
)


async def test_staff_lend_a_book_to_a_member(client, factory, db, staff, frozen_today):
    member = await factory.member(email="rita@example.com")
    book = await factory.book(inventory=2)
    response = await factory.borrow(client, staff, book, days=7, user=member.id)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["user_id"] == member.id
    fee = the_payment(body)
    assert (fee["status"], fee["method"]) == ("PENDING", None)
    assert fee["session_url"]
    assert await copies(db, book.id) == {"shelf": 1, "on_loan": 1, "ready": 0}
    [text] = await notification_texts(db, "borrowing_created")
    assert "rita@example.com" in text
    [entry] = await audit_entries(db)
    assert (entry.actor_id, entry.action, entry.member_id, entry.book_id) == (
        staff.id,
        "borrowing.create",
        member.id,
        book.id,
    )
    assert entry.changes["expected_return_date"] == [None, day(7).isoformat()]
    # The member sees it as their own loan.
    mine = await client.get("/api/borrowings/", headers=factory.auth(member))
    assert [b["id"] for b in mine.json()["results"]] == [body["id"]]


async def test_a_member_borrowing_for_themselves_leaves_no_audit_row(
    client, factory, db, frozen_today
):
    member = await factory.member()
    await factory.borrow_ok(client, member, await factory.book(), user=member.id)
    assert await audit_entries(db) == []


async def test_the_members_rules_apply_at_the_desk(client, factory, db, sandbox, staff):
    member = await factory.member()
    unpaid = await factory.borrowing(member, await factory.book(), returned=day(0))
    await factory.payment(unpaid, type="FINE")
    withdrawn = await factory.book(withdrawn=True)
    book = await factory.book()
    before = await snapshot(db, sandbox)
    assert_error(await factory.borrow(client, staff, book, user=member.id), 400, "unpaid_fines")
    other = await factory.member()
    assert_error(
        await factory.borrow(client, staff, withdrawn, user=other.id), 400, "book_withdrawn"
    )
    assert_error(await factory.borrow(client, staff, book, user=999), 404, "user_not_found")
    gone = await factory.member(is_active=False)
    assert_error(await factory.borrow(client, staff, book, user=gone.id), 400, "member_inactive")
    assert await snapshot(db, sandbox) == before
    assert await audit_entries(db) == []


async def test_the_loan_limit_is_the_members(client, factory, db, staff, frozen_today):
    member = await factory.member()
    for _ in range(factory.settings.MAX_ACTIVE_BORROWINGS):
        await factory.borrowing(member, await factory.book())
    response = await factory.borrow(client, staff, await factory.book(), user=member.id)
    assert_error(response, 400, "loan_limit_reached")
    assert (await factory.borrow(client, staff, await factory.book())).status_code == 201


async def test_the_members_ready_hold_is_handed_over_and_anothers_copy_is_not_lent(
    client, factory, db, staff, frozen_today
):
    member, other = await factory.member(), await factory.member()
    book = await factory.book(inventory=0)
    hold = await factory.hold(member, book, status="READY")
    assert_error(await factory.borrow(client, staff, book, user=other.id), 400, "book_unavailable")
    response = await factory.borrow(client, staff, book, user=member.id)
    assert response.status_code == 201, response.text
    fulfilled = await fetch(db, Hold, hold.id)
    assert (fulfilled.status, fulfilled.borrowing_id) == ("FULFILLED", response.json()["id"])
    assert await copies(db, book.id) == {"shelf": 0, "on_loan": 1, "ready": 0}
    [entry] = await audit_entries(db)
    assert entry.changes["hold"] == [hold.id, "FULFILLED"]


async def test_a_desk_loan_racing_the_members_own_borrow_of_the_last_copy(
    client, factory, db, staff, frozen_today
):
    at_desk, online = await factory.member(), await factory.member()
    book = await factory.book(inventory=1)
    responses = await asyncio.gather(
        factory.borrow(client, staff, book, user=at_desk.id),
        factory.borrow(client, online, book),
    )
    assert sorted(r.status_code for r in responses) == [201, 400], [r.text for r in responses]
    assert_error(next(r for r in responses if r.status_code == 400), 400, "book_unavailable")
    assert await copies(db, book.id) == {"shelf": 0, "on_loan": 1, "ready": 0}
    assert await count(db, Borrowing) == 1


async def test_staff_extend_and_return_a_members_loan_on_record(
    client, factory, db, staff, frozen_today
):
    member = await factory.member()
    book = await factory.book()
    loan = await factory.borrow_ok(client, staff, book, days=3, user=member.id)
    extended = await factory.extend(client, staff, loan["id"], day(6))
    assert extended.status_code == 200, extended.text
    returned = await factory.return_book(client, staff, loan["id"])
    assert returned.status_code == 200, returned.text
    actions = [(e.action, e.changes) for e in await audit_entries(db)]
    assert [a for a, _ in actions] == ["borrowing.create", "borrowing.extend", "borrowing.return"]
    assert actions[1][1]["expected_return_date"] == [day(3).isoformat(), day(6).isoformat()]
    assert actions[2][1] == {"actual_return_date": [None, day(0).isoformat()]}
