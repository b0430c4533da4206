"""POST /api/borrowings/: what a borrowing creates, what it is charged, and the refusals,
each of which must leave everything as it was (rows, inventory, Stripe sessions)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import update

from library_service.models import Book, Borrowing, Notification
from library_service.payments.stripe_client import StripeGateway
from tests.factories import (
    TODAY,
    assert_error,
    assert_refused,
    checkout_requests,
    count,
    day,
    fetch,
    inventory,
    payments_of,
    snapshot,
)

URL = "/api/borrowings/"


# -- success ------------------------------------------------------------------------------------


async def test_borrow_creates_borrowing_payment_and_decrements_inventory(
    client, factory, db, sandbox, frozen_today
):
    member = await factory.member()
    book = await factory.book(inventory=2, daily_fee=Decimal("1.50"), title="Emma")
    r = await factory.borrow(client, member, book, days=4)
    assert r.status_code == 201, r.text
    body = r.json()

    assert body["borrow_date"] == "2026-03-01"
    assert body["expected_return_date"] == "2026-03-05"
    assert body["actual_return_date"] is None
    assert body["is_active"] is True
    assert body["user_id"] == member.id
    assert body["book"]["id"] == book.id
    assert body["book"]["title"] == "Emma"
    assert body["book"]["author"] == "Jane Austen"
    assert body["book"]["cover"] == "SOFT"
    assert body["book"]["daily_fee"] == "1.50"
    assert body["book"]["inventory"] == 1

    assert len(body["payments"]) == 1
    payment = body["payments"][0]
    assert payment["type"] == "PAYMENT"
    assert payment["status"] == "PENDING"
    assert payment["money_to_pay"] == "6.00"
    assert payment["borrowing_id"] == body["id"]
    assert payment["session_url"]
    assert payment["session_id"]

    # database
    assert await inventory(db, book.id) == 1
    row = await fetch(db, Borrowing, body["id"])
    assert (row.user_id, row.book_id) == (member.id, book.id)
    assert (row.borrow_date, row.expected_return_date) == (TODAY, day(4))
    assert row.actual_return_date is None
    payments = await payments_of(db)
    assert len(payments) == 1
    assert payments[0].id == payment["id"]
    assert payments[0].borrowing_id == body["id"]
    assert (payments[0].type, payments[0].status) == ("PAYMENT", "PENDING")
    assert payments[0].money_to_pay == Decimal("6.00")
    assert payments[0].session_id == payment["session_id"]
    assert payments[0].session_url == payment["session_url"]
    assert await count(db, Borrowing) == 1
    assert await count(db, Notification) == 1  # staff are told of the new borrowing

    # Stripe got integer cents in usd for this payment
    session = sandbox.sessions[payment["session_id"]]
    assert session["amount_total"] == 600
    assert session["currency"] == "usd"
    assert session["status"] == "open"
    assert session["metadata"]["payment_id"] == str(payment["id"])
    assert session["url"] == payment["session_url"]


async def test_a_member_may_name_only_themselves_as_the_borrower(client, factory, db, frozen_today):
    member = await factory.member()
    other = await factory.member()
    book = await factory.book(inventory=3)
    r = await factory.borrow(client, member, book, days=2, user=other.id)
    assert_error(r, 403, "lending_requires_staff")
    assert await count(db, Borrowing) == 0
    assert await inventory(db, book.id) == 3

    r = await factory.borrow(client, member, book, days=2, user=member.id, user_id=other.id)
    assert r.status_code == 201, r.text
    assert r.json()["user_id"] == member.id
    assert await count(db, Borrowing, Borrowing.user_id == other.id) == 0


async def test_borrow_without_trailing_slash(client, factory, db, frozen_today):
    member = await factory.member()
    book = await factory.book(inventory=1)
    r = await client.post(
        "/api/borrowings",
        json={"book": book.id, "expected_return_date": day(1).isoformat()},
        headers=factory.auth(member),
    )
    assert r.status_code == 201, r.text
    assert await inventory(db, book.id) == 0


async def test_borrow_exactly_max_days_ahead_is_allowed(
    client, factory, db, settings, frozen_today
):
    member = await factory.member()
    book = await factory.book(inventory=1, daily_fee=Decimal("1.50"))
    until = day(settings.MAX_BORROW_DAYS)
    r = await factory.borrow(client, member, book, until=until)
    assert r.status_code == 201, r.text
    assert r.json()["expected_return_date"] == until.isoformat()
    expected_fee = Decimal(settings.MAX_BORROW_DAYS) * Decimal("1.50")
    assert r.json()["payments"][0]["money_to_pay"] == f"{expected_fee:.2f}"
    assert await inventory(db, book.id) == 0
    assert await count(db, Borrowing) == 1


async def test_max_borrow_days_setting_is_honoured(
    client, factory, db, sandbox, settings, monkeypatch, frozen_today
):
    monkeypatch.setattr(settings, "MAX_BORROW_DAYS", 7)
    member = await factory.member()
    book = await factory.book(inventory=2)
    too_far = factory.borrow(client, member, book, days=8)
    await assert_refused(db, sandbox, too_far, 400, "return_date_too_far")
    r = await factory.borrow(client, member, book, days=7)
    assert r.status_code == 201, r.text


# -- what a borrowing is charged ------------------------------------------------------------


@pytest.mark.parametrize(
    ("fee", "days", "expected"),
    [
        ("0.10", 1, "0.50"),  # 0.10 is under Stripe's minimum: charged and stored as 0.50
        ("0.10", 4, "0.50"),  # 0.40
        ("0.12", 4, "0.50"),  # 0.48
        ("0.10", 5, "0.50"),  # exactly the minimum
        ("0.10", 6, "0.60"),
        ("0.49", 1, "0.50"),
        ("0.01", 60, "0.60"),
        ("2.35", 3, "7.05"),
    ],
)
async def test_borrowing_fee_amount(
    client, factory, db, sandbox, frozen_today, fee, days, expected
):
    member = await factory.member()
    book = await factory.book(inventory=1, daily_fee=Decimal(fee))
    r = await factory.borrow(client, member, book, days=days)
    assert r.status_code == 201, r.text
    payment = r.json()["payments"][0]
    assert payment["money_to_pay"] == expected
    rows = await payments_of(db)
    assert len(rows) == 1
    assert rows[0].money_to_pay == Decimal(expected)
    cents = int(Decimal(expected) * 100)
    assert checkout_requests(sandbox)[0]["line_items"][0]["price_data"]["unit_amount"] == str(cents)
    assert sandbox.sessions[payment["session_id"]]["amount_total"] == cents


# -- refusals change nothing ------------------------------------------------------------------


async def test_borrow_unknown_book(client, factory, db, sandbox, frozen_today):
    member = await factory.member()
    await factory.book(inventory=2)
    request = factory.borrow(client, member, 999_999, days=3)
    await assert_refused(db, sandbox, request, 404, "book_not_found")


async def test_borrow_refused_when_the_fee_changes_while_stripe_is_asked(
    client, factory, db, sandbox, monkeypatch, frozen_today
):
    """The fee is priced before Stripe is called; if staff change it meanwhile, the
    borrowing is refused rather than charged at the old price, and its session expired."""
    member = await factory.member()
    book = await factory.book(inventory=2, daily_fee=Decimal("1.00"))
    create_session = StripeGateway.create_checkout_session

    async def fee_changes_meanwhile(self, **kwargs):  # type: ignore[no-untyped-def]
        async with db.sessionmaker() as s, s.begin():
            await s.execute(update(Book).where(Book.id == book.id).values(daily_fee=2))
        return await create_session(self, **kwargs)

    monkeypatch.setattr(StripeGateway, "create_checkout_session", fee_changes_meanwhile)
    # inventory, rows and open sessions as they were
    request = factory.borrow(client, member, book, days=3)
    await assert_refused(db, sandbox, request, 409, "fee_changed")
    assert [s["status"] for s in sandbox.sessions.values()] == ["expired"]


async def test_borrow_book_with_no_copies(client, factory, db, sandbox, frozen_today):
    member = await factory.member()
    book = await factory.book(inventory=0)
    request = factory.borrow(client, member, book, days=3)
    after = await assert_refused(db, sandbox, request, 400, "book_unavailable")
    assert after["books"][book.id] == 0


@pytest.mark.parametrize(
    ("offset_days", "code"),
    [
        (0, "invalid_return_date"),  # today
        (-1, "invalid_return_date"),  # yesterday
        (-400, "invalid_return_date"),  # long ago
        (61, "return_date_too_far"),  # MAX_BORROW_DAYS (60) + 1
        (365, "return_date_too_far"),
    ],
)
async def test_borrow_bad_return_date(
    client, factory, db, sandbox, settings, frozen_today, offset_days, code
):
    assert settings.MAX_BORROW_DAYS == 60
    member = await factory.member()
    book = await factory.book(inventory=2)
    request = factory.borrow(client, member, book, until=day(offset_days))
    after = await assert_refused(db, sandbox, request, 400, code)
    assert after["books"][book.id] == 2


# -- the loan limit -----------------------------------------------------------------------------


async def test_fourth_active_borrowing_is_refused(client, factory, db, sandbox, frozen_today):
    member = await factory.member()
    books = await factory.books([{"inventory": 2, "title": f"Book {i}"} for i in range(4)])
    for book in books[:3]:
        r = await factory.borrow(client, member, book, days=5)
        assert r.status_code == 201, r.text
    request = factory.borrow(client, member, books[3], days=5)
    after = await assert_refused(db, sandbox, request, 400, "loan_limit_reached")
    assert after["books"][books[3].id] == 2
    assert await count(db, Borrowing, Borrowing.user_id == member.id) == 3


async def test_returned_borrowings_do_not_count_towards_the_limit(
    client, factory, db, frozen_today
):
    member = await factory.member()
    book = await factory.book(inventory=5)
    for _ in range(5):  # five returned loans
        await factory.borrowing(member, book, borrowed=day(-10), due=day(-7), returned=day(-8))
    for _ in range(2):  # two active ones
        await factory.borrowing(member, book, due=day(3))
    r = await factory.borrow(client, member, book, days=3)
    assert r.status_code == 201, r.text
    assert await inventory(db, book.id) == 4
    r = await factory.borrow(client, member, book, days=3)
    assert_error(r, 400, "loan_limit_reached")
    assert await inventory(db, book.id) == 4
    assert await count(db, Borrowing, Borrowing.actual_return_date.is_(None)) == 3


async def test_other_members_loans_do_not_count_towards_my_limit(client, factory, db, frozen_today):
    member = await factory.member()
    other = await factory.member()
    book = await factory.book(inventory=5)
    for _ in range(3):
        await factory.borrowing(other, book, due=day(3))
    r = await factory.borrow(client, member, book, days=3)
    assert r.status_code == 201, r.text
    assert await inventory(db, book.id) == 4


# -- who may borrow, and with what body ---------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
    ids=["none", "garbage-token", "basic"],
)
async def test_borrow_requires_authentication(client, factory, db, sandbox, frozen_today, headers):
    book = await factory.book(inventory=2)
    before = await snapshot(db, sandbox)
    r = await factory.borrow(client, headers, book, days=3)
    assert r.status_code == 401, r.text
    assert r.json()["code"] in {"not_authenticated", "token_not_valid"}
    assert await snapshot(db, sandbox) == before


async def test_borrow_with_a_refresh_token_is_refused(client, factory, db, sandbox, settings):
    from library_service.users.security import create_token

    member = await factory.member()
    book = await factory.book(inventory=2)
    headers = {"Authorization": f"Bearer {create_token(member.id, 'refresh', settings)}"}
    before = await snapshot(db, sandbox)
    r = await factory.borrow(client, headers, book, days=3)
    assert r.status_code == 401, r.text
    assert await snapshot(db, sandbox) == before


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"book": "BOOK"},
        {"expected_return_date": "2026-03-05"},
        {"book": "abc", "expected_return_date": "2026-03-05"},
        {"book": 0, "expected_return_date": "2026-03-05"},
        {"book": -3, "expected_return_date": "2026-03-05"},
        {"book": 2**31, "expected_return_date": "2026-03-05"},
        {"book": 10**30, "expected_return_date": "2026-03-05"},
        {"book": None, "expected_return_date": "2026-03-05"},
        {"book": "BOOK", "expected_return_date": "tomorrow"},
        {"book": "BOOK", "expected_return_date": "2026-02-30"},
        {"book": "BOOK", "expected_return_date": None},
        {"book": "BOOK", "expected_return_date": 12345678901234567890},
        [1, 2, 3],
        "a string",
    ],
)
async def test_borrow_malformed_body(client, factory, db, sandbox, frozen_today, payload):
    member = await factory.member()
    book = await factory.book(inventory=2)
    if isinstance(payload, dict) and payload.get("book") == "BOOK":
        payload = {**payload, "book": book.id}
    before = await snapshot(db, sandbox)
    r = await client.post(URL, json=payload, headers=factory.auth(member))
    assert r.status_code == 422, r.text
    assert "detail" in r.json()
    assert await snapshot(db, sandbox) == before


async def test_borrow_body_not_json(client, factory, db, sandbox, frozen_today):
    member = await factory.member()
    await factory.book(inventory=2)
    before = await snapshot(db, sandbox)
    headers = {**factory.auth(member), "Content-Type": "application/json"}
    r = await client.post(URL, content=b"{not json", headers=headers)
    assert r.status_code == 422, r.text
    assert await snapshot(db, sandbox) == before
