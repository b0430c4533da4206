"""Real concurrency: many requests at once through the app, each on its own connection and
transaction, committing for real. Run with -s to see the observed outcomes."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from library_service.models import Book, Borrowing, Payment, User
from tests.factories import count, day, inventory, on_day, open_sessions, the_payment

pytestmark = pytest.mark.slow


def outcome(response: httpx.Response) -> tuple[int, str | None]:
    code = None
    if response.status_code >= 400:
        try:
            code = response.json().get("code")
        except ValueError:
            code = response.text[:80]
    return response.status_code, code


def tally(responses: list[httpx.Response]) -> Counter[tuple[int, str | None]]:
    return Counter(outcome(r) for r in responses)


async def rows(db, statement: Any) -> list[Any]:
    async with db.sessionmaker() as s, s.begin():
        return list((await s.execute(statement)).all())


async def return_at_once(client, factory, who: list[Any], borrowing_id: int) -> list[Any]:
    """Each of `who` presses "return" on the borrowing at the same time."""
    return await asyncio.gather(*(factory.return_book(client, user, borrowing_id) for user in who))


@pytest.mark.parametrize(("members", "copies"), [(30, 5), (12, 1)])
async def test_k_of_n_concurrent_borrowings_succeed(client, factory, db, sandbox, members, copies):
    book = await factory.book(inventory=copies, daily_fee=Decimal("1.50"))
    users = [await factory.member() for _ in range(members)]
    with on_day(0):
        responses = await asyncio.gather(
            *(factory.borrow(client, user, book, days=4) for user in users)
        )
    statuses = tally(responses)
    print(f"\n{members} members, {copies} copies:", dict(statuses))

    assert statuses == {(201, None): copies, (400, "book_unavailable"): members - copies}
    assert await inventory(db, book.id) == 0
    borrowings = await rows(db, select(Borrowing.id, Borrowing.user_id, Borrowing.book_id))
    assert len(borrowings) == copies
    winners = {r.json()["user_id"] for r in responses if r.status_code == 201}
    assert {b.user_id for b in borrowings} == winners
    assert len(winners) == copies
    payments = await rows(db, select(Payment.borrowing_id, Payment.type, Payment.money_to_pay))
    assert len(payments) == copies
    assert {p.borrowing_id for p in payments} == {b.id for b in borrowings}
    assert {(p.type, p.money_to_pay) for p in payments} == {("PAYMENT", Decimal("6.00"))}
    # sessions Stripe opened for the losers were expired: only the winners' can be paid
    print("stripe sessions created:", len(sandbox.sessions), "open:", len(open_sessions(sandbox)))
    winners_sessions = [
        the_payment(r.json())["session_id"] for r in responses if r.status_code == 201
    ]
    assert sorted(open_sessions(sandbox)) == sorted(winners_sessions)
    assert len(winners_sessions) == copies


async def test_concurrent_returns_of_one_borrowing(client, factory, db, sandbox):
    member = await factory.member()
    book = await factory.book(inventory=3)
    borrowing_id = (await factory.borrow_ok(client, member, book, days=5, on=0))["id"]
    assert await inventory(db, book.id) == 2

    with on_day(2):  # on time: no fine
        responses = await return_at_once(client, factory, [member] * 8, borrowing_id)
    statuses = tally(responses)
    print("\n8 concurrent returns:", dict(statuses))

    assert statuses == {(200, None): 1, (400, "already_returned"): 7}
    assert await inventory(db, book.id) == 3
    returned = await rows(
        db, select(Borrowing.actual_return_date).where(Borrowing.id == borrowing_id)
    )
    assert returned == [(day(2),)]
    assert await count(db, Payment) == 1


async def test_concurrent_late_returns_make_exactly_one_fine(client, factory, db, sandbox):
    member = await factory.member()
    staff = await factory.staff()
    book = await factory.book(inventory=1, daily_fee=Decimal("1.50"))
    borrowing_id = (await factory.borrow_ok(client, member, book, days=4, on=0))["id"]

    with on_day(8):  # 4 days late
        # the member and the staff both press "return", several times
        responses = await return_at_once(client, factory, [member, staff] * 4, borrowing_id)
    statuses = tally(responses)
    print("\n8 concurrent late returns:", dict(statuses))

    assert statuses == {(200, None): 1, (400, "already_returned"): 7}
    assert await inventory(db, book.id) == 1
    payments = await rows(
        db,
        select(Payment.type, Payment.status, Payment.money_to_pay, Payment.session_id).order_by(
            Payment.id
        ),
    )
    fines = [p for p in payments if p.type == "FINE"]
    print("FINE rows:", len(fines), "open stripe sessions:", len(open_sessions(sandbox)))
    assert len(fines) == 1
    assert (fines[0].status, fines[0].money_to_pay) == ("PENDING", Decimal("12.00"))
    assert len(payments) == 2
    winner = next(r for r in responses if r.status_code == 200).json()
    assert [p["session_id"] for p in winner["payments"] if p["type"] == "FINE"] == [
        fines[0].session_id
    ]
    # only the fee's and the recorded fine's sessions can be paid; the losers' were expired
    assert len(open_sessions(sandbox)) == 2
    assert sandbox.sessions[fines[0].session_id]["status"] == "open"


async def test_one_member_borrowing_five_books_at_once(
    client, factory, db, sandbox, settings, monkeypatch
):
    monkeypatch.setattr(settings, "MAX_ACTIVE_BORROWINGS", 3)
    member = await factory.member()
    books = await factory.books([{"inventory": 2, "title": f"Book {i}"} for i in range(5)])
    with on_day(0):
        responses = await asyncio.gather(
            *(factory.borrow(client, member, book, days=3) for book in books)
        )
    statuses = tally(responses)
    print("\none member, 5 books, limit 3:", dict(statuses))

    assert statuses == {(201, None): 3, (400, "loan_limit_reached"): 2}
    active = await count(
        db, Borrowing, Borrowing.user_id == member.id, Borrowing.actual_return_date.is_(None)
    )
    assert active == 3
    inventories = dict(await rows(db, select(Book.id, Book.inventory)))
    borrowed = {r.json()["book"]["id"] for r in responses if r.status_code == 201}
    assert inventories == {book.id: 1 if book.id in borrowed else 2 for book in books}
    assert await count(db, Payment) == 3
    assert len(open_sessions(sandbox)) == 3


async def test_borrow_and_return_of_the_last_copy_at_once(client, factory, db, sandbox):
    """Returns and borrowings of one book interleaving keep inventory exact."""
    book = await factory.book(inventory=3)
    holders = [await factory.member() for _ in range(3)]
    newcomers = [await factory.member() for _ in range(6)]
    loans = []
    for user in holders:
        loans.append((user, (await factory.borrow_ok(client, user, book, days=5, on=0))["id"]))
    assert await inventory(db, book.id) == 0

    with on_day(1):
        returns = [factory.return_book(client, user, loan_id) for user, loan_id in loans]
        borrows = [factory.borrow(client, user, book, until=day(6)) for user in newcomers]
        responses = await asyncio.gather(*returns, *borrows)
    return_statuses = tally(responses[: len(returns)])
    borrow_statuses = tally(responses[len(returns) :])
    print("\nreturns:", dict(return_statuses), "borrows:", dict(borrow_statuses))

    assert return_statuses == {(200, None): 3}
    assert set(borrow_statuses) <= {(201, None), (400, "book_unavailable")}
    won = borrow_statuses[(201, None)]
    assert won <= 3
    assert await inventory(db, book.id) == 3 - won
    active = await count(
        db, Borrowing, Borrowing.book_id == book.id, Borrowing.actual_return_date.is_(None)
    )
    assert active == won


@pytest.mark.parametrize(("days_late", "waits"), [(4, True), (0, False)])
async def test_late_return_waits_for_a_borrowing_of_the_same_member(
    client, factory, db, sandbox, days_late, waits
):
    """A fine changes the member's standing, so a late return takes the member's lock, as a
    borrowing does: a borrowing under way either finishes first or sees the fine. An on-time
    return changes nothing a borrowing checks, and does not wait."""
    member = await factory.member()
    book = await factory.book(inventory=2, daily_fee=Decimal("1.00"))
    borrowing_id = (await factory.borrow_ok(client, member, book, days=4, on=0))["id"]

    with on_day(4 + days_late):
        async with db.sessionmaker() as s, s.begin():
            # what a borrowing of this member holds while it checks their standing
            await s.execute(select(User.id).where(User.id == member.id).with_for_update())
            returning = asyncio.create_task(factory.return_book(client, member, borrowing_id))
            await asyncio.sleep(0.5)
            assert returning.done() is not waits
        response = await returning
    assert response.status_code == 200, response.text
    fines = [p for p in response.json()["payments"] if p["type"] == "FINE"]
    assert len(fines) == (1 if days_late else 0)
