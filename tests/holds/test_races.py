"""The holds queue under real concurrency: requests through the app and the worker's expiry
job at once, each on its own connection and transaction, committing for real.

What must hold, for every book, whatever the interleaving:
- shelf inventory + active borrowings + READY holds is constant;
- no copy goes to two holds, and no copy sits on the shelf while a hold waits;
- no hold is skipped: every hold that ever got a copy is older (lower id) than every hold
  still WAITING (cancelled ones aside).
Run with -s to see the observed outcomes."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from library_service.models import Book, Borrowing, Hold
from tests.factories import (
    copies,
    day,
    expire_holds,
    fetch,
    holds_of,
    on_day,
    open_sessions,
    payments_of,
    waiting_for_locks,
)

pytestmark = pytest.mark.slow

GOT_A_COPY = {"READY", "FULFILLED", "EXPIRED"}


def outcome(result: Any) -> Any:
    """A response as (status, code); a job's result as it is."""
    if isinstance(result, BaseException):
        return f"raised {result!r}"
    if not isinstance(result, httpx.Response):
        return ("job", result)
    code = result.json().get("code") if result.status_code >= 400 else None
    return result.status_code, code


async def gather(*steps: Awaitable[Any]) -> list[Any]:
    """Run the steps at once; every one's result (an exception fails the test)."""
    results = await asyncio.gather(*steps, return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    assert not failed, failed
    return results


async def assert_queue_consistent(db, book_id: int, *, total: int) -> dict[str, int]:
    """The invariants of one book's copies and queue (see the module's docstring)."""
    where = await copies(db, book_id)
    assert where["shelf"] >= 0, where
    assert where["shelf"] + where["on_loan"] + where["ready"] == total, where
    holds = await holds_of(db, book_id)
    waiting = [h.id for h in holds if h.status == "WAITING"]
    served = [h.id for h in holds if h.status in GOT_A_COPY]
    if waiting:
        assert where["shelf"] == 0, (where, waiting)
        assert not served or max(served) < min(waiting), [(h.id, h.status) for h in holds]
    # a READY hold has a day to collect by; a FULFILLED one names its borrowing, each a
    # different one, of the hold's member and book
    assert all(h.ready_until is not None for h in holds if h.status == "READY")
    fulfilled = [h for h in holds if h.status == "FULFILLED"]
    assert len({h.borrowing_id for h in fulfilled}) == len(fulfilled)
    for hold in fulfilled:
        assert hold.borrowing_id is not None
        borrowing = await fetch(db, Borrowing, hold.borrowing_id)
        assert (borrowing.user_id, borrowing.book_id) == (hold.user_id, book_id)
    # one open hold per member and book, and none for a member borrowing the book
    open_members = [h.user_id for h in holds if h.status in ("WAITING", "READY")]
    assert len(open_members) == len(set(open_members))
    async with db.sessionmaker() as s:
        borrowers = await s.scalars(
            select(Borrowing.user_id).where(
                Borrowing.book_id == book_id, Borrowing.actual_return_date.is_(None)
            )
        )
        assert not set(open_members) & set(borrowers)
    return where


# -- a mix of everything, several rounds ------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
async def test_a_mix_of_returns_borrowings_holds_cancellations_and_expiries(
    client, factory, app, db, settings, sandbox, seed
):
    """Two books, each with every copy out: some lent (due day 6), one put aside for a hold
    that expires after day 3, and a queue behind it. On day 5 everything happens at once:
    the loans come back, the READY hold's member comes to collect, members waiting try to
    borrow (their copy may have just been put aside) or leave the queue, newcomers queue
    or borrow, and the expiry job runs twice; then every invariant is checked."""
    rng = random.Random(seed)
    staff = await factory.staff()
    books = await factory.books(
        [{"title": f"Book {i}", "inventory": rng.randint(2, 3)} for i in range(2)]
    )
    totals, steps = {}, []
    for book in books:
        totals[book.id] = book.inventory
        readers = [await factory.member() for _ in range(book.inventory - 1)]
        loans = [
            (await factory.borrow_ok(client, reader, book, until=day(6), on=0))["id"]
            for reader in readers
        ]
        collector = await factory.member()
        ready = await factory.hold(collector, book, status="READY", ready_until=day(3))
        await _take_off_the_shelf(db, book.id)  # the copy put aside is not on it
        queue = [await factory.member() for _ in range(rng.randint(3, 5))]
        holds = [(await factory.place_hold_ok(client, m, book, on=1))["id"] for m in queue]
        newcomers = [await factory.member() for _ in range(3)]
        await assert_queue_consistent(db, book.id, total=totals[book.id])

        for reader, loan_id in zip(readers, loans, strict=True):
            who = staff if rng.random() < 0.3 else reader
            steps.append(lambda who=who, loan_id=loan_id: factory.return_book(client, who, loan_id))
        steps.append(lambda c=collector, b=book: factory.borrow(client, c, b, until=day(9)))
        if rng.random() < 0.5:
            steps.append(lambda c=collector, h=ready.id: factory.cancel_hold(client, c, h))
        for member, hold_id in zip(queue, holds, strict=True):
            roll = rng.random()
            if roll < 0.4:
                steps.append(lambda m=member, b=book: factory.borrow(client, m, b, until=day(9)))
            elif roll < 0.7:
                who = staff if rng.random() < 0.3 else member
                steps.append(lambda w=who, h=hold_id: factory.cancel_hold(client, w, h))
        for member in newcomers:
            if rng.random() < 0.5:
                steps.append(lambda m=member, b=book: factory.place_hold(client, m, b))
            else:
                steps.append(lambda m=member, b=book: factory.borrow(client, m, b, until=day(9)))
    steps += [lambda: expire_holds(app, db, settings)] * 2
    rng.shuffle(steps)

    with on_day(5):  # each step starts up to 20 ms late, so each seed interleaves anew
        results = await gather(*(later(rng.uniform(0, 0.02), step()) for step in steps))
    outcomes = Counter(outcome(r) for r in results)
    print(f"\nseed {seed}:", dict(outcomes))

    assert set(outcomes) <= {
        (200, None),
        (201, None),
        ("job", 0),
        ("job", 1),
        ("job", 2),
        (400, "book_unavailable"),
        (400, "book_available"),
        (400, "hold_closed"),
    }
    for book in books:
        await assert_queue_consistent(db, book.id, total=totals[book.id])
        holds = await holds_of(db, book.id)
        assert all(h.ready_until >= day(5) for h in holds if h.status == "READY")
    # a refused borrowing's session was expired: only recorded payments can be paid
    recorded = {p.session_id for p in await payments_of(db)}
    assert set(open_sessions(sandbox)) <= recorded


async def _take_off_the_shelf(db, book_id: int) -> None:
    """A copy put aside for a hold made straight in the database leaves the shelf."""
    async with db.sessionmaker() as s, s.begin():
        book = await s.get(Book, book_id, with_for_update=True)
        assert book is not None
        book.inventory -= 1


# -- a READY hold closing while its member comes to collect ----------------------------------


async def collector_and_queue(factory) -> tuple[Any, Any, Book, Hold, Hold]:
    """A copy of a book put aside for `collector` until day 3, `next_member` waiting."""
    collector, next_member = await factory.member(), await factory.member()
    book = await factory.book(inventory=0)
    ready = await factory.hold(collector, book, status="READY", ready_until=day(3))
    waiting = await factory.hold(next_member, book)
    return collector, next_member, book, ready, waiting


async def assert_one_of_the_two_won(
    db, sandbox, borrowed: httpx.Response, ready: Hold, waiting: Hold, *, closed: str
) -> str:
    """Either the member collected the copy (their hold FULFILLED, the next still waiting)
    or their hold was closed first (`closed`: EXPIRED or CANCELLED), the copy went to the
    next member and the borrowing was refused with its session expired. Which one won."""
    first = await fetch(db, Hold, ready.id)
    second = await fetch(db, Hold, waiting.id)
    if borrowed.status_code == 201:
        assert (first.status, first.borrowing_id) == ("FULFILLED", borrowed.json()["id"])
        assert second.status == "WAITING"
        assert await copies(db, ready.book_id) == {"shelf": 0, "on_loan": 1, "ready": 0}
        assert len(open_sessions(sandbox)) == 1
        return "collected"
    assert outcome(borrowed) == (400, "book_unavailable")
    assert first.status == closed
    assert (second.status, second.ready_until) == ("READY", day(7))
    assert await copies(db, ready.book_id) == {"shelf": 0, "on_loan": 0, "ready": 1}
    assert await payments_of(db) == []
    assert open_sessions(sandbox) == []
    return closed


async def close_ready_hold(client, factory, app, db, settings, how: str, who, hold: Hold) -> Any:
    """Expire the hold (the worker's job) or cancel it (its member), on day 4."""
    if how == "EXPIRED":
        return await expire_holds(app, db, settings)
    response = await factory.cancel_hold(client, who, hold.id)
    assert outcome(response) in {(200, None), (400, "hold_closed")}
    return response


@pytest.mark.parametrize("how", ["EXPIRED", "CANCELLED"])
@pytest.mark.parametrize("first", ["closed first", "borrowed first"])
async def test_a_ready_hold_closing_while_its_member_borrows_in_a_set_order(
    client, factory, app, db, settings, sandbox, how, first
):
    """The two queue for the book's row lock in a set order (a third transaction holds it
    until both wait): the first in line wins, and the other sees what it did."""
    collector, _, book, ready, waiting = await collector_and_queue(factory)

    def close() -> Any:
        return close_ready_hold(client, factory, app, db, settings, how, collector, ready)

    def borrow() -> Any:
        return factory.borrow(client, collector, book, until=day(8))

    with on_day(4):
        async with db.sessionmaker() as s, s.begin():
            await s.execute(select(Book.id).where(Book.id == book.id).with_for_update())
            one = asyncio.create_task(close() if first == "closed first" else borrow())
            await waiting_for_locks(db, 1)
            other = asyncio.create_task(borrow() if first == "closed first" else close())
            await waiting_for_locks(db, 2)
        results = await gather(one, other)
    borrowed = next(r for r in results if isinstance(r, httpx.Response) and _is_borrow(r))
    winner = await assert_one_of_the_two_won(db, sandbox, borrowed, ready, waiting, closed=how)
    assert winner == ("collected" if first == "borrowed first" else how)


def _is_borrow(response: httpx.Response) -> bool:
    return response.request.url.path == "/api/borrowings/"


@pytest.mark.parametrize("how", ["EXPIRED", "CANCELLED"])
async def test_a_ready_hold_closing_while_its_member_borrows(
    client, factory, app, db, settings, sandbox, how
):
    """At once, ten times over, the closing started a little later each time (a borrowing
    asks Stripe before it takes any lock): exactly one of the two wins each time."""
    winners: Counter[str] = Counter()
    for delay in range(10):
        sandbox.reset()
        collector, _, book, ready, waiting = await collector_and_queue(factory)

        with on_day(4):
            results = await gather(
                later(
                    delay / 1000,
                    close_ready_hold(client, factory, app, db, settings, how, collector, ready),
                ),
                factory.borrow(client, collector, book, until=day(8)),
            )
        borrowed = results[1]
        winners[
            await assert_one_of_the_two_won(db, sandbox, borrowed, ready, waiting, closed=how)
        ] += 1
        await _clear_the_ledger(db)
    print(f"\n{how} vs collecting, 10 rounds:", dict(winners))


async def later(delay: float, step: Awaitable[Any]) -> Any:
    await asyncio.sleep(delay)
    return await step


async def _clear_the_ledger(db) -> None:
    """Each round starts from no holds, borrowings or payments (books and members stay)."""
    async with db.sessionmaker() as s, s.begin():
        await s.execute(text("TRUNCATE holds, payments, borrowings, notifications CASCADE"))
