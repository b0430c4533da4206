"""Round trips to PostgreSQL per request on the borrowings' hot paths.

Each round trip costs CPU in the API and in PostgreSQL, and under load that is most of what
a request costs (see the Performance section of the README). These sequences are part of the
design: a change that adds a statement to one of them should be a deliberate one.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.factories import day, round_trips


async def test_borrow_round_trips(client, factory):
    member = await factory.member()
    book = await factory.book(inventory=3, daily_fee=Decimal("1.00"))
    with round_trips() as sent:
        await factory.borrow_ok(client, member, book, days=4, on=0)
    assert sent == [
        "SELECT users",  # who is calling (autocommit)
        "SELECT books",  # the book and the member's standing; no transaction before Stripe
        "SELECT nextval",  # the payment's id, reserved by the checkout saga
        "BEGIN",
        # the member's lock, then the book's, in one statement, which draws the loan's id;
        "SELECT users FOR UPDATE",
        "SELECT books",  # then, seeing all they waited for, the standing and any READY hold
        # the loan, its fee, a copy taken and the staff message, in one statement
        "INSERT borrowings + INSERT payments + UPDATE books + INSERT notifications",
        "COMMIT",
    ]


@pytest.mark.parametrize(
    ("returned_on", "expected"),
    [
        pytest.param(
            2,
            [
                "SELECT users",
                "SELECT borrowings",  # the fine, if any, is priced before any lock
                "BEGIN",
                "SELECT borrowings FOR UPDATE",  # the borrowing and its book, locked
                "SELECT payments",
                "SELECT holds",  # the copy goes to the book's queue first, if anyone waits
                # returned, the copy back on the shelf and the staff message, in one statement
                "UPDATE borrowings + UPDATE books + INSERT notifications",
                "COMMIT",
            ],
            id="on-time",
        ),
        pytest.param(
            9,
            [
                "SELECT users",
                "SELECT borrowings",
                "SELECT nextval",  # the fine's payment id, for Stripe
                "BEGIN",
                "SELECT users FOR UPDATE",  # a fine changes the member's standing
                "SELECT borrowings FOR UPDATE",
                "SELECT payments",
                "SELECT holds",  # the copy goes to the book's queue first, if anyone waits
                "UPDATE borrowings + UPDATE books + INSERT payments + INSERT notifications",
                "INSERT member_notices",  # the member is told of the fine
                "COMMIT",
            ],
            id="late",
        ),
    ],
)
async def test_return_round_trips(client, factory, returned_on, expected):
    """Due on day 4."""
    member, borrowing = await factory.borrowed(client, inventory=3, daily_fee=Decimal("1.00"))
    with round_trips() as sent:
        response = await factory.return_book(client, member, borrowing["id"], on=returned_on)
    assert response.status_code == 200, response.text
    assert sent == expected


async def test_reading_and_refused_borrowing_round_trips(client, factory):
    member = await factory.member()
    book = await factory.book(inventory=3)
    await factory.borrow_ok(client, member, book, days=4, on=0)

    with round_trips() as sent:
        response = await client.get("/api/borrowings/", headers=factory.auth(member))
    assert response.status_code == 200
    assert sent == ["SELECT users", "SELECT borrowings"]

    with round_trips() as sent:
        response = await factory.borrow(client, member, 10**6, days=2, on=0)
    assert response.status_code == 404
    assert sent == ["SELECT users", "SELECT books"]  # refused before any transaction


async def test_extend_round_trips(client, factory):
    """Due on day 4, extended to day 7 on day 2."""
    member, borrowing = await factory.borrowed(client, inventory=3, daily_fee=Decimal("1.00"))
    with round_trips() as sent:
        response = await factory.extend(client, member, borrowing["id"], day(7), on=2)
    assert response.status_code == 200, response.text
    assert sent == [
        "SELECT users",
        "SELECT borrowings",  # the loan and its book, as the caller may see them
        "SELECT subqueries",  # the member's standing, and whether others wait for the book
        "SELECT nextval",  # the new payment's id, for Stripe
        "BEGIN",
        "SELECT users FOR UPDATE",  # an unpaid fine must be seen, or wait
        "SELECT borrowings FOR UPDATE",
        "SELECT payments",
        "SELECT subqueries",  # the facts again, under the locks
        # the new due date, its fee and the staff message, in one statement
        "UPDATE borrowings + INSERT payments + INSERT notifications",
        "INSERT member_notices",  # the member is sent the new payment's link
        "COMMIT",
    ]
