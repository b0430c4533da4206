"""Round trips to PostgreSQL per request on the hot paths.

Each round trip costs CPU in the API and in PostgreSQL, and under load that is most of what
a request costs (see the Performance section of the README). These sequences are part of the
design: a change that adds a statement to one of them should be a deliberate one.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import asyncpg
import asyncpg.prepared_stmt
import pytest

from tests.test_payments import DAY0, borrow_ok, on_day, post_event, return_on, the_payment


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What asyncpg sends, one label per round trip: simple queries (BEGIN, COMMIT,
    ROLLBACK) and executions of prepared statements."""
    log: list[str] = []
    execute = asyncpg.connection.Connection.execute
    fetch = asyncpg.prepared_stmt.PreparedStatement.fetch

    async def logged_execute(self, query, *args, **kwargs):  # type: ignore[no-untyped-def]
        log.append(query.split()[0].rstrip(";"))
        return await execute(self, query, *args, **kwargs)

    async def logged_fetch(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        log.append(label(self.get_query()))
        return await fetch(self, *args, **kwargs)

    monkeypatch.setattr(asyncpg.connection.Connection, "execute", logged_execute)
    monkeypatch.setattr(asyncpg.prepared_stmt.PreparedStatement, "fetch", logged_fetch)
    return log


def label(sql: str) -> str:
    """`INSERT payments`, `UPDATE books`, `SELECT users FOR UPDATE` …"""
    verb = sql.split()[0].upper()
    if verb == "SELECT":
        return f"SELECT {outer_table(sql)}" + (" FOR UPDATE" if "FOR UPDATE" in sql else "")
    table = re.search(r"^(?:INSERT INTO|UPDATE|DELETE FROM) (\w+)", sql)
    assert table, sql
    return f"{verb} {table.group(1)}"


def outer_table(select: str) -> str:
    """The table the outer SELECT reads (not a subquery's), or the function it calls."""
    depth = 0
    for token in re.finditer(r"\(|\)|\bFROM (\w+)", select):
        if token.group() == "(":
            depth += 1
        elif token.group() == ")":
            depth -= 1
        elif depth == 0:
            return token.group(1)
    function = re.match(r"SELECT (\w+)\(", select)
    assert function, select
    return function.group(1)


async def test_borrow_pay_return_round_trips(client, factory, sandbox, round_trips):
    member = await factory.user()
    book = await factory.book(inventory=3, daily_fee=Decimal("1.00"))

    round_trips.clear()
    borrowing = await borrow_ok(client, factory, member, book, days=4)
    assert round_trips == [
        "SELECT users",  # who is calling (autocommit)
        "SELECT books",  # the book and the member's standing; no transaction before Stripe
        "SELECT nextval",  # the payment's id, reserved by the checkout saga
        "BEGIN",
        "SELECT users FOR UPDATE",  # the member's lock, then their standing again:
        "SELECT books FOR UPDATE",  # the book locked, the rules checked again in Python
        "UPDATE books",  # a copy taken
        "INSERT borrowings",
        "INSERT payments",
        "INSERT notifications",
        "COMMIT",
    ]

    session_id = the_payment(borrowing)["session_id"]
    round_trips.clear()
    payload, header = sandbox.signed_event(
        "checkout.session.completed", sandbox.mark_paid(session_id)
    )
    assert (await post_event(client, payload, header)).status_code == 200
    assert round_trips == [
        "BEGIN",
        "INSERT stripe_events",
        "UPDATE payments",  # returning what the staff message says
        "INSERT notifications",
        "COMMIT",
    ]

    round_trips.clear()
    with on_day(0):
        response = await client.get(f"/api/payments/success/?session_id={session_id}")
    assert response.status_code == 200, response.text
    assert round_trips == ["SELECT payments"]  # already PAID by the webhook

    round_trips.clear()
    assert (await return_on(client, factory, member, borrowing["id"], day=2)).status_code == 200
    assert round_trips == [
        "SELECT users",
        "SELECT borrowings",  # the fine, if any, is priced before any lock
        "BEGIN",
        "SELECT borrowings FOR UPDATE",  # the borrowing and its book, locked
        "SELECT payments",
        "SELECT holds",  # the copy goes to the book's queue first, if anyone waits
        "UPDATE books",
        "UPDATE borrowings",
        "INSERT notifications",
        "COMMIT",
    ]


async def test_late_return_round_trips(client, factory, round_trips):
    member = await factory.user()
    book = await factory.book(inventory=3, daily_fee=Decimal("1.00"))
    borrowing = await borrow_ok(client, factory, member, book, days=4)

    round_trips.clear()
    assert (await return_on(client, factory, member, borrowing["id"], day=9)).status_code == 200
    assert round_trips == [
        "SELECT users",
        "SELECT borrowings",
        "SELECT nextval",  # the fine's payment id, for Stripe
        "BEGIN",
        "SELECT users FOR UPDATE",  # a fine changes the member's standing
        "SELECT borrowings FOR UPDATE",
        "SELECT payments",
        "SELECT holds",
        "UPDATE books",
        "UPDATE borrowings",
        "INSERT payments",
        "INSERT notifications",
        "COMMIT",
    ]


async def test_reading_round_trips(client, factory, round_trips):
    member = await factory.user()
    book = await factory.book(inventory=3)
    await borrow_ok(client, factory, member, book, days=4)

    round_trips.clear()
    assert (await client.get("/api/books/?limit=20")).status_code == 200
    # The page, and its total: counted here because the tests keep no count cache
    # (BOOK_COUNT_CACHE_SECONDS=0); in production a count serves for 5 s.
    assert round_trips == ["SELECT books", "SELECT books"]

    round_trips.clear()
    response = await client.get("/api/borrowings/", headers=factory.auth(member))
    assert response.status_code == 200
    assert round_trips == ["SELECT users", "SELECT borrowings"]

    round_trips.clear()
    with on_day(0):
        response = await client.post(
            "/api/borrowings/",
            json={"book": 10**6, "expected_return_date": str(DAY0 + timedelta(days=2))},
            headers=factory.auth(member),
        )
    assert response.status_code == 404
    assert round_trips == ["SELECT users", "SELECT books"]  # refused before any transaction
