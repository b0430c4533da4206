"""Borrowings: creating, listing, reading and returning, with their money and clock rules.

Every rule is checked on the HTTP answer (status, body) and on the database rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select, update

from library_service.core import clock
from library_service.models import Book, Borrowing, Notification, Payment
from library_service.payments.stripe_client import StripeGateway

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
TODAY = date(2026, 3, 1)
URL = "/api/borrowings/"


# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def frozen_today() -> Iterator[date]:
    """Library clock stopped at 2026-03-01 12:00 UTC (library time zone UTC)."""
    with clock.frozen(NOW):
        yield TODAY


def iso(day: date) -> str:
    return day.isoformat()


async def borrow(
    client: httpx.AsyncClient, headers: dict[str, str], book_id: int, until: date, **extra: Any
) -> httpx.Response:
    payload = {"book": book_id, "expected_return_date": iso(until), **extra}
    return await client.post(URL, json=payload, headers=headers)


async def give_back(
    client: httpx.AsyncClient, headers: dict[str, str], borrowing_id: int
) -> httpx.Response:
    return await client.post(f"{URL}{borrowing_id}/return/", headers=headers)


async def inventory(db, book_id: int) -> int:
    async with db.sessionmaker() as s, s.begin():
        return int(await s.scalar(select(Book.inventory).where(Book.id == book_id)))


async def count(db, model: Any, *where: Any) -> int:
    async with db.sessionmaker() as s, s.begin():
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def get_borrowing_row(db, borrowing_id: int) -> Borrowing:
    async with db.sessionmaker() as s, s.begin():
        row = await s.get(Borrowing, borrowing_id)
        assert row is not None
        return row


async def payment_rows(db, borrowing_id: int | None = None) -> list[Payment]:
    statement = select(Payment).order_by(Payment.id)
    if borrowing_id is not None:
        statement = statement.where(Payment.borrowing_id == borrowing_id)
    async with db.sessionmaker() as s, s.begin():
        return list((await s.scalars(statement)).all())


async def snapshot(db, sandbox) -> dict[str, Any]:
    """Everything a refused borrowing or return must leave as it was."""
    async with db.sessionmaker() as s, s.begin():
        books = dict((await s.execute(select(Book.id, Book.inventory))).all())
        borrowings = sorted(
            (r.id, r.actual_return_date)
            for r in (await s.execute(select(Borrowing.id, Borrowing.actual_return_date))).all()
        )
        payments = sorted(
            tuple(r)
            for r in (
                await s.execute(
                    select(Payment.id, Payment.type, Payment.status, Payment.money_to_pay)
                )
            ).all()
        )
        notifications = int(await s.scalar(select(func.count()).select_from(Notification)) or 0)
    open_sessions = sum(1 for sess in sandbox.sessions.values() if sess["status"] == "open")
    return {
        "books": books,
        "borrowings": borrowings,
        "payments": payments,
        "notifications": notifications,
        "open_stripe_sessions": open_sessions,
    }


async def insert_borrowing(
    db,
    *,
    user_id: int,
    book_id: int,
    borrow_date: date,
    expected: date,
    returned: date | None = None,
) -> int:
    async with db.sessionmaker() as s, s.begin():
        row = Borrowing(
            borrow_date=borrow_date,
            expected_return_date=expected,
            actual_return_date=returned,
            book_id=book_id,
            user_id=user_id,
        )
        s.add(row)
        await s.flush()
        return row.id


async def insert_payment(
    db, *, borrowing_id: int, type_: str, status: str, amount: str = "3.00"
) -> int:
    async with db.sessionmaker() as s, s.begin():
        row = Payment(
            borrowing_id=borrowing_id,
            type=type_,
            status=status,
            money_to_pay=Decimal(amount),
            session_id=None,
            session_url=None,
        )
        s.add(row)
        await s.flush()
        return row.id


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]


@contextmanager
def count_statements(db) -> Iterator[list[str]]:
    statements: list[str] = []

    def before_cursor_execute(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield statements
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", before_cursor_execute)


# -- POST /api/borrowings/ : success ------------------------------------------------------------


async def test_borrow_creates_borrowing_payment_and_decrements_inventory(
    client, factory, db, sandbox, frozen_today
):
    member = await factory.user()
    book = await factory.book(inventory=2, daily_fee=Decimal("1.50"), title="Emma")
    r = await borrow(client, factory.auth(member), book.id, frozen_today + timedelta(days=4))
    assert r.status_code == 201, r.text
    body = r.json()
    print(body)

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
    row = await get_borrowing_row(db, body["id"])
    assert (row.user_id, row.book_id) == (member.id, book.id)
    assert (row.borrow_date, row.expected_return_date) == (TODAY, date(2026, 3, 5))
    assert row.actual_return_date is None
    payments = await payment_rows(db)
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


async def test_borrow_ignores_user_given_in_body(client, factory, db, frozen_today):
    member = await factory.user()
    other = await factory.user()
    book = await factory.book(inventory=3)
    r = await borrow(
        client,
        factory.auth(member),
        book.id,
        frozen_today + timedelta(days=2),
        user=other.id,
        user_id=other.id,
    )
    assert r.status_code == 201, r.text
    assert r.json()["user_id"] == member.id
    row = await get_borrowing_row(db, r.json()["id"])
    assert row.user_id == member.id
    assert await count(db, Borrowing, Borrowing.user_id == other.id) == 0


async def test_borrow_without_trailing_slash(client, factory, db, frozen_today):
    member = await factory.user()
    book = await factory.book(inventory=1)
    r = await client.post(
        "/api/borrowings",
        json={"book": book.id, "expected_return_date": iso(frozen_today + timedelta(days=1))},
        headers=factory.auth(member),
    )
    assert r.status_code == 201, r.text
    assert await inventory(db, book.id) == 0


async def test_borrow_exactly_max_days_ahead_is_allowed(
    client, factory, db, settings, frozen_today
):
    member = await factory.user()
    book = await factory.book(inventory=1, daily_fee=Decimal("1.50"))
    until = frozen_today + timedelta(days=settings.MAX_BORROW_DAYS)
    r = await borrow(client, factory.auth(member), book.id, until)
    assert r.status_code == 201, r.text
    assert r.json()["expected_return_date"] == iso(until)
    expected_fee = Decimal(settings.MAX_BORROW_DAYS) * Decimal("1.50")
    assert r.json()["payments"][0]["money_to_pay"] == f"{expected_fee:.2f}"
    assert await inventory(db, book.id) == 0
    assert await count(db, Borrowing) == 1


async def test_max_borrow_days_setting_is_honoured(
    client, factory, db, sandbox, settings, monkeypatch, frozen_today
):
    monkeypatch.setattr(settings, "MAX_BORROW_DAYS", 7)
    member = await factory.user()
    book = await factory.book(inventory=2)
    headers = factory.auth(member)
    before = await snapshot(db, sandbox)
    r = await borrow(client, headers, book.id, frozen_today + timedelta(days=8))
    assert_error(r, 400, "return_date_too_far")
    assert await snapshot(db, sandbox) == before
    r = await borrow(client, headers, book.id, frozen_today + timedelta(days=7))
    assert r.status_code == 201, r.text


# -- POST /api/borrowings/ : refusals change nothing -------------------------------------------


async def test_borrow_unknown_book(client, factory, db, sandbox, frozen_today):
    member = await factory.user()
    await factory.book(inventory=2)
    before = await snapshot(db, sandbox)
    r = await borrow(client, factory.auth(member), 999_999, frozen_today + timedelta(days=3))
    assert_error(r, 404, "book_not_found")
    assert await snapshot(db, sandbox) == before


async def test_borrow_refused_when_the_fee_changes_while_stripe_is_asked(
    client, factory, db, sandbox, monkeypatch, frozen_today
):
    """The fee is priced before Stripe is called; if staff change it meanwhile, the
    borrowing is refused rather than charged at the old price, and its session expired."""
    member = await factory.user()
    book = await factory.book(inventory=2, daily_fee=Decimal("1.00"))
    before = await snapshot(db, sandbox)
    create_session = StripeGateway.create_checkout_session

    async def fee_changes_meanwhile(self, **kwargs):  # type: ignore[no-untyped-def]
        async with db.sessionmaker() as s, s.begin():
            await s.execute(update(Book).where(Book.id == book.id).values(daily_fee=2))
        return await create_session(self, **kwargs)

    monkeypatch.setattr(StripeGateway, "create_checkout_session", fee_changes_meanwhile)
    r = await borrow(client, factory.auth(member), book.id, frozen_today + timedelta(days=3))
    assert_error(r, 409, "fee_changed")
    after = await snapshot(db, sandbox)
    assert after == before  # inventory, rows and open sessions as they were
    assert [s["status"] for s in sandbox.sessions.values()] == ["expired"]


async def test_borrow_book_with_no_copies(client, factory, db, sandbox, frozen_today):
    member = await factory.user()
    book = await factory.book(inventory=0)
    before = await snapshot(db, sandbox)
    r = await borrow(client, factory.auth(member), book.id, frozen_today + timedelta(days=3))
    assert_error(r, 400, "book_unavailable")
    after = await snapshot(db, sandbox)
    assert after == before
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
    member = await factory.user()
    book = await factory.book(inventory=2)
    before = await snapshot(db, sandbox)
    r = await borrow(client, factory.auth(member), book.id, frozen_today + timedelta(offset_days))
    assert_error(r, 400, code)
    assert await snapshot(db, sandbox) == before
    assert (await snapshot(db, sandbox))["books"][book.id] == 2


async def test_fourth_active_borrowing_is_refused(client, factory, db, sandbox, frozen_today):
    member = await factory.user()
    headers = factory.auth(member)
    books = [await factory.book(inventory=2, title=f"Book {i}") for i in range(4)]
    for book in books[:3]:
        r = await borrow(client, headers, book.id, frozen_today + timedelta(days=5))
        assert r.status_code == 201, r.text
    before = await snapshot(db, sandbox)
    r = await borrow(client, headers, books[3].id, frozen_today + timedelta(days=5))
    assert_error(r, 400, "loan_limit_reached")
    after = await snapshot(db, sandbox)
    assert after == before
    assert after["books"][books[3].id] == 2
    assert await count(db, Borrowing, Borrowing.user_id == member.id) == 3


async def test_returned_borrowings_do_not_count_towards_the_limit(
    client, factory, db, frozen_today
):
    member = await factory.user()
    headers = factory.auth(member)
    book = await factory.book(inventory=5)
    earlier = frozen_today - timedelta(days=10)
    for _ in range(5):  # five returned loans
        await insert_borrowing(
            db,
            user_id=member.id,
            book_id=book.id,
            borrow_date=earlier,
            expected=earlier + timedelta(days=3),
            returned=earlier + timedelta(days=2),
        )
    for _ in range(2):  # two active ones
        await insert_borrowing(
            db,
            user_id=member.id,
            book_id=book.id,
            borrow_date=frozen_today,
            expected=frozen_today + timedelta(days=3),
        )
    r = await borrow(client, headers, book.id, frozen_today + timedelta(days=3))
    assert r.status_code == 201, r.text
    assert await inventory(db, book.id) == 4
    r = await borrow(client, headers, book.id, frozen_today + timedelta(days=3))
    assert_error(r, 400, "loan_limit_reached")
    assert await inventory(db, book.id) == 4
    assert await count(db, Borrowing, Borrowing.actual_return_date.is_(None)) == 3


async def test_other_members_loans_do_not_count_towards_my_limit(client, factory, db, frozen_today):
    member = await factory.user()
    other = await factory.user()
    book = await factory.book(inventory=5)
    for _ in range(3):
        await insert_borrowing(
            db,
            user_id=other.id,
            book_id=book.id,
            borrow_date=frozen_today,
            expected=frozen_today + timedelta(days=3),
        )
    r = await borrow(client, factory.auth(member), book.id, frozen_today + timedelta(days=3))
    assert r.status_code == 201, r.text
    assert await inventory(db, book.id) == 4


@pytest.mark.parametrize(
    ("payment_type", "status", "blocked"),
    [
        ("FINE", "PENDING", True),
        ("FINE", "EXPIRED", True),
        ("FINE", "PAID", False),
        ("PAYMENT", "PENDING", False),  # an unpaid borrowing fee does not block
        ("PAYMENT", "EXPIRED", False),
    ],
)
async def test_unpaid_fines_block_borrowing(
    client, factory, db, sandbox, frozen_today, payment_type, status, blocked
):
    member = await factory.user()
    old_book = await factory.book(inventory=1, title="Old")
    book = await factory.book(inventory=2, title="New")
    earlier = frozen_today - timedelta(days=20)
    old = await insert_borrowing(
        db,
        user_id=member.id,
        book_id=old_book.id,
        borrow_date=earlier,
        expected=earlier + timedelta(days=2),
        returned=earlier + timedelta(days=6),
    )
    await insert_payment(db, borrowing_id=old, type_=payment_type, status=status)
    before = await snapshot(db, sandbox)
    r = await borrow(client, factory.auth(member), book.id, frozen_today + timedelta(days=3))
    if blocked:
        assert_error(r, 400, "unpaid_fines")
        assert await snapshot(db, sandbox) == before
    else:
        assert r.status_code == 201, r.text
        assert await inventory(db, book.id) == 1
        assert await count(db, Borrowing, Borrowing.user_id == member.id) == 2


async def test_another_members_unpaid_fine_does_not_block_me(client, factory, db, frozen_today):
    member = await factory.user()
    other = await factory.user()
    book = await factory.book(inventory=2)
    earlier = frozen_today - timedelta(days=20)
    old = await insert_borrowing(
        db,
        user_id=other.id,
        book_id=book.id,
        borrow_date=earlier,
        expected=earlier + timedelta(days=2),
        returned=earlier + timedelta(days=6),
    )
    await insert_payment(db, borrowing_id=old, type_="FINE", status="PENDING")
    r = await borrow(client, factory.auth(member), book.id, frozen_today + timedelta(days=3))
    assert r.status_code == 201, r.text
    assert await inventory(db, book.id) == 1


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
    r = await borrow(client, headers, book.id, frozen_today + timedelta(days=3))
    assert r.status_code == 401, r.text
    assert r.json()["code"] in {"not_authenticated", "token_not_valid"}
    assert await snapshot(db, sandbox) == before


async def test_borrow_with_a_refresh_token_is_refused(client, factory, db, sandbox, settings):
    from library_service.core.security import create_token

    member = await factory.user()
    book = await factory.book(inventory=2)
    headers = {"Authorization": f"Bearer {create_token(member.id, 'refresh', settings)}"}
    before = await snapshot(db, sandbox)
    r = await borrow(client, headers, book.id, date.today() + timedelta(days=3))
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
    member = await factory.user()
    book = await factory.book(inventory=2)
    if isinstance(payload, dict) and payload.get("book") == "BOOK":
        payload = {**payload, "book": book.id}
    before = await snapshot(db, sandbox)
    r = await client.post(URL, json=payload, headers=factory.auth(member))
    assert r.status_code == 422, r.text
    assert "detail" in r.json()
    assert await snapshot(db, sandbox) == before


async def test_borrow_body_not_json(client, factory, db, sandbox, frozen_today):
    member = await factory.user()
    await factory.book(inventory=2)
    before = await snapshot(db, sandbox)
    headers = {**factory.auth(member), "Content-Type": "application/json"}
    r = await client.post(URL, content=b"{not json", headers=headers)
    assert r.status_code == 422, r.text
    assert await snapshot(db, sandbox) == before


# -- money ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fee", "days", "expected"),
    [
        ("0.10", 1, "0.50"),  # 0.10 is under Stripe's minimum: charged and stored as 0.50
        ("0.10", 4, "0.50"),  # 0.40
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
    member = await factory.user()
    book = await factory.book(inventory=1, daily_fee=Decimal(fee))
    r = await borrow(client, factory.auth(member), book.id, frozen_today + timedelta(days=days))
    assert r.status_code == 201, r.text
    payment = r.json()["payments"][0]
    assert payment["money_to_pay"] == expected
    rows = await payment_rows(db)
    assert len(rows) == 1
    assert rows[0].money_to_pay == Decimal(expected)
    assert sandbox.sessions[payment["session_id"]]["amount_total"] == int(Decimal(expected) * 100)


@pytest.mark.parametrize(
    ("fee", "multiplier", "late_days", "expected"),
    [
        ("1.15", "1.5", 1, "1.73"),  # 1.725 -> 1.73 (half-up; half-even would give 1.72)
        ("0.35", "1.5", 1, "0.53"),  # 0.525 -> 0.53 (half-even would give 0.52)
        ("1.50", "3", 4, "18.00"),  # FINE_MULTIPLIER is read from the settings
        ("0.10", "2", 1, "0.50"),  # 0.20 is under the minimum: charged as 0.50
    ],
)
async def test_fine_amount_rounding_and_minimum(
    client, factory, db, sandbox, settings, monkeypatch, fee, multiplier, late_days, expected
):
    monkeypatch.setattr(settings, "FINE_MULTIPLIER", Decimal(multiplier))
    member = await factory.user()
    book = await factory.book(inventory=1, daily_fee=Decimal(fee))
    with clock.frozen(NOW):
        r = await borrow(client, factory.auth(member), book.id, TODAY + timedelta(days=5))
        assert r.status_code == 201, r.text
    borrowing_id = r.json()["id"]
    with clock.frozen(NOW + timedelta(days=5 + late_days)):
        r = await give_back(client, factory.auth(member), borrowing_id)
    assert r.status_code == 200, r.text
    fines = [p for p in r.json()["payments"] if p["type"] == "FINE"]
    assert len(fines) == 1
    assert fines[0]["money_to_pay"] == expected
    rows = [p for p in await payment_rows(db, borrowing_id) if p.type == "FINE"]
    assert len(rows) == 1
    assert rows[0].money_to_pay == Decimal(expected)
    assert sandbox.sessions[fines[0]["session_id"]]["amount_total"] == int(Decimal(expected) * 100)


# -- GET /api/borrowings/ ------------------------------------------------------------------------


async def _arrange_list(db, factory):
    """Two members and a staff user; member A has 3 loans (1 returned), B has 2 (both active)."""
    a = await factory.user()
    b = await factory.user()
    staff = await factory.user(is_staff=True)
    book = await factory.book(inventory=10, title="Listed", daily_fee=Decimal("2.25"))
    ids: dict[str, list[int]] = {"a": [], "b": []}
    plan = [("a", None), ("b", None), ("a", TODAY + timedelta(days=1)), ("b", None), ("a", None)]
    for who, returned in plan:
        user = a if who == "a" else b
        ids[who].append(
            await insert_borrowing(
                db,
                user_id=user.id,
                book_id=book.id,
                borrow_date=TODAY,
                expected=TODAY + timedelta(days=7),
                returned=returned,
            )
        )
    return a, b, staff, book, ids


def _ids(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["results"]]


async def test_list_members_see_only_their_own_newest_first(client, factory, db, frozen_today):
    a, b, _, book, ids = await _arrange_list(db, factory)
    r = await client.get(URL, headers=factory.auth(a))
    assert _ids(r) == sorted(ids["a"], reverse=True)
    body = r.json()
    assert body["count"] == 3
    assert body["next"] is None
    assert body["previous"] is None
    for item in body["results"]:
        assert item["user_id"] == a.id
        assert item["book"] == {
            "id": book.id,
            "title": "Listed",
            "author": "Jane Austen",
            "cover": "SOFT",
            "daily_fee": "2.25",
        }
        assert item["borrow_date"] == "2026-03-01"
        assert item["expected_return_date"] == "2026-03-08"
        assert item["is_active"] is (item["actual_return_date"] is None)
    r = await client.get(URL, headers=factory.auth(b))
    assert _ids(r) == sorted(ids["b"], reverse=True)
    assert r.json()["count"] == 2


async def test_list_staff_see_all_and_filter_by_user(client, factory, db, frozen_today):
    a, b, staff, _, ids = await _arrange_list(db, factory)
    headers = factory.auth(staff)
    everyone = sorted(ids["a"] + ids["b"], reverse=True)
    r = await client.get(URL, headers=headers)
    assert _ids(r) == everyone
    assert r.json()["count"] == 5
    r = await client.get(URL, params={"user_id": b.id}, headers=headers)
    assert _ids(r) == sorted(ids["b"], reverse=True)
    assert r.json()["count"] == 2
    r = await client.get(URL, params={"user_id": a.id, "is_active": "true"}, headers=headers)
    assert _ids(r) == sorted([ids["a"][0], ids["a"][2]], reverse=True)
    r = await client.get(URL, params={"user_id": staff.id}, headers=headers)
    assert _ids(r) == []
    assert r.json()["count"] == 0


async def test_list_user_id_filter_is_ignored_for_members(client, factory, db, frozen_today):
    a, b, _, _, ids = await _arrange_list(db, factory)
    r = await client.get(URL, params={"user_id": b.id}, headers=factory.auth(a))
    assert _ids(r) == sorted(ids["a"], reverse=True)
    assert r.json()["count"] == 3
    assert all(item["user_id"] == a.id for item in r.json()["results"])


async def test_list_is_active_filter(client, factory, db, frozen_today):
    a, _, staff, _, ids = await _arrange_list(db, factory)
    r = await client.get(URL, params={"is_active": "true"}, headers=factory.auth(a))
    assert _ids(r) == [ids["a"][2], ids["a"][0]]
    assert all(
        item["is_active"] and item["actual_return_date"] is None for item in r.json()["results"]
    )
    r = await client.get(URL, params={"is_active": "false"}, headers=factory.auth(a))
    assert _ids(r) == [ids["a"][1]]
    item = r.json()["results"][0]
    assert item["is_active"] is False
    assert item["actual_return_date"] == "2026-03-02"
    r = await client.get(URL, params={"is_active": "false"}, headers=factory.auth(staff))
    assert _ids(r) == [ids["a"][1]]
    r = await client.get(URL, params={"is_active": "true"}, headers=factory.auth(staff))
    assert r.json()["count"] == 4


async def test_list_pagination_envelope(client, factory, db, frozen_today):
    a, _, _, _, ids = await _arrange_list(db, factory)
    headers = factory.auth(a)
    newest_first = sorted(ids["a"], reverse=True)

    r = await client.get(URL, params={"limit": 2}, headers=headers)
    body = r.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert _ids(r) == newest_first[:2]
    assert body["count"] == 3
    assert body["previous"] is None
    next_url = httpx.URL(body["next"])
    assert next_url.params["limit"] == "2"
    assert next_url.params["offset"] == "2"

    r = await client.get(body["next"], headers=headers)
    body = r.json()
    assert _ids(r) == newest_first[2:]
    assert body["count"] == 3
    assert body["next"] is None
    previous = httpx.URL(body["previous"])
    assert previous.params["offset"] == "0"

    r = await client.get(URL, params={"limit": 2, "offset": 10}, headers=headers)
    assert _ids(r) == []
    assert r.json()["count"] == 3


async def test_list_requires_authentication(client, factory, db, frozen_today):
    await _arrange_list(db, factory)
    r = await client.get(URL)
    assert r.status_code == 401, r.text


@pytest.mark.parametrize("params", [{"is_active": "maybe"}, {"limit": 0}, {"offset": -1}])
async def test_list_bad_query_is_422(client, factory, params):
    member = await factory.user()
    r = await client.get(URL, params=params, headers=factory.auth(member))
    assert r.status_code == 422, r.text


async def test_list_has_no_n_plus_one(client, factory, db, frozen_today):
    member = await factory.user()
    staff = await factory.user(is_staff=True)
    books = [await factory.book(inventory=50, title=f"T{i}") for i in range(3)]

    async def add(n: int) -> None:
        for i in range(n):
            borrowing_id = await insert_borrowing(
                db,
                user_id=member.id,
                book_id=books[i % 3].id,
                borrow_date=TODAY,
                expected=TODAY + timedelta(days=5),
            )
            await insert_payment(db, borrowing_id=borrowing_id, type_="PAYMENT", status="PENDING")

    async def statements_for_list(headers: dict[str, str], expected_count: int) -> int:
        with count_statements(db) as statements:
            r = await client.get(URL, headers=headers)
        assert r.status_code == 200, r.text
        assert len(r.json()["results"]) == expected_count
        assert statements, "the listener saw no statement at all"
        return len(statements)

    await add(1)
    member_one = await statements_for_list(factory.auth(member), 1)
    staff_one = await statements_for_list(factory.auth(staff), 1)
    await add(19)
    member_twenty = await statements_for_list(factory.auth(member), 20)
    staff_twenty = await statements_for_list(factory.auth(staff), 20)
    print({"member": (member_one, member_twenty), "staff": (staff_one, staff_twenty)})
    assert member_twenty == member_one
    assert staff_twenty == staff_one


# -- GET /api/borrowings/{id}/ -------------------------------------------------------------------


async def test_read_own_borrowing_with_book_and_payments(client, factory, db, frozen_today):
    member = await factory.user()
    book = await factory.book(inventory=2, isbn="9780141439518", year=1813, description="Classic")
    r = await borrow(client, factory.auth(member), book.id, frozen_today + timedelta(days=3))
    assert r.status_code == 201, r.text
    created = r.json()
    r = await client.get(f"{URL}{created['id']}/", headers=factory.auth(member))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body == created
    assert body["book"] == {
        "id": book.id,
        "title": "Pride and Prejudice",
        "author": "Jane Austen",
        "cover": "SOFT",
        "inventory": 1,
        "daily_fee": "1.50",
        "isbn": "9780141439518",
        "year": 1813,
        "description": "Classic",
        "withdrawn": False,
    }
    rows = await payment_rows(db, created["id"])
    assert [p["id"] for p in body["payments"]] == [p.id for p in rows]
    assert body["payments"][0]["money_to_pay"] == "4.50"
    # without the trailing slash too
    r = await client.get(f"{URL}{created['id']}", headers=factory.auth(member))
    assert r.status_code == 200, r.text
    assert r.json()["id"] == created["id"]


async def test_read_another_members_borrowing_is_404(client, factory, db, frozen_today):
    owner = await factory.user()
    intruder = await factory.user()
    book = await factory.book(inventory=2)
    borrowing_id = await insert_borrowing(
        db, user_id=owner.id, book_id=book.id, borrow_date=TODAY, expected=TODAY + timedelta(3)
    )
    r = await client.get(f"{URL}{borrowing_id}/", headers=factory.auth(intruder))
    assert r.status_code == 404, r.text
    missing = await client.get(f"{URL}{borrowing_id + 1000}/", headers=factory.auth(intruder))
    assert missing.status_code == 404
    assert r.json() == missing.json()  # existence is not revealed
    assert "id" not in r.json()


async def test_staff_read_anyones_borrowing(client, factory, db, frozen_today):
    owner = await factory.user()
    staff = await factory.user(is_staff=True)
    book = await factory.book(inventory=2)
    borrowing_id = await insert_borrowing(
        db, user_id=owner.id, book_id=book.id, borrow_date=TODAY, expected=TODAY + timedelta(3)
    )
    payment_id = await insert_payment(
        db, borrowing_id=borrowing_id, type_="PAYMENT", status="PAID", amount="4.50"
    )
    r = await client.get(f"{URL}{borrowing_id}/", headers=factory.auth(staff))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user_id"] == owner.id
    assert body["book"]["id"] == book.id
    assert [(p["id"], p["status"], p["money_to_pay"]) for p in body["payments"]] == [
        (payment_id, "PAID", "4.50")
    ]


async def test_read_borrowing_requires_authentication(client, factory, db, frozen_today):
    owner = await factory.user()
    book = await factory.book(inventory=2)
    borrowing_id = await insert_borrowing(
        db, user_id=owner.id, book_id=book.id, borrow_date=TODAY, expected=TODAY + timedelta(3)
    )
    r = await client.get(f"{URL}{borrowing_id}/")
    assert r.status_code == 401, r.text


@pytest.mark.parametrize("bad_id", ["0", "-1", "abc", str(2**31), str(10**30)])
async def test_read_borrowing_bad_id_is_not_a_500(client, factory, bad_id):
    member = await factory.user()
    r = await client.get(f"{URL}{bad_id}/", headers=factory.auth(member))
    assert r.status_code in {404, 422}, r.text


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_borrowings_cannot_be_edited_or_deleted(
    client, factory, db, sandbox, frozen_today, method
):
    owner = await factory.user()
    staff = await factory.user(is_staff=True)
    book = await factory.book(inventory=2)
    r = await borrow(client, factory.auth(owner), book.id, frozen_today + timedelta(days=3))
    assert r.status_code == 201, r.text
    borrowing_id = r.json()["id"]
    before = await snapshot(db, sandbox)
    payload = {"book": book.id, "expected_return_date": iso(frozen_today + timedelta(days=30))}
    for headers in (factory.auth(owner), factory.auth(staff)):
        r = await client.request(
            method,
            f"{URL}{borrowing_id}/",
            headers=headers,
            json=None if method == "DELETE" else payload,
        )
        assert r.status_code == 405, r.text
    assert await snapshot(db, sandbox) == before
    row = await get_borrowing_row(db, borrowing_id)
    assert row.expected_return_date == frozen_today + timedelta(days=3)


# -- POST /api/borrowings/{id}/return/ -----------------------------------------------------------


async def _borrow_on(client, factory, member, book, borrowed: datetime, until: date) -> int:
    with clock.frozen(borrowed):
        r = await borrow(client, factory.auth(member), book.id, until)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


@pytest.mark.parametrize(
    ("returned_on", "label"),
    [(date(2026, 3, 3), "early"), (date(2026, 3, 5), "on time")],
)
async def test_return_sets_date_and_restores_inventory(
    client, factory, db, sandbox, returned_on, label
):
    member = await factory.user()
    book = await factory.book(inventory=2)
    borrowing_id = await _borrow_on(client, factory, member, book, NOW, date(2026, 3, 5))
    assert await inventory(db, book.id) == 1
    with clock.frozen(datetime.combine(returned_on, NOW.timetz())):
        r = await give_back(client, factory.auth(member), borrowing_id)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == borrowing_id
    assert body["actual_return_date"] == iso(returned_on)
    assert body["is_active"] is False
    assert body["book"]["inventory"] == 2
    assert [p["type"] for p in body["payments"]] == ["PAYMENT"], label  # no fine
    assert await inventory(db, book.id) == 2
    row = await get_borrowing_row(db, borrowing_id)
    assert row.actual_return_date == returned_on
    assert [p.type for p in await payment_rows(db)] == ["PAYMENT"]


async def test_second_return_is_refused(client, factory, db, sandbox):
    member = await factory.user()
    book = await factory.book(inventory=2)
    borrowing_id = await _borrow_on(client, factory, member, book, NOW, date(2026, 3, 5))
    with clock.frozen(NOW + timedelta(days=2)):
        r = await give_back(client, factory.auth(member), borrowing_id)
        assert r.status_code == 200, r.text
    before = await snapshot(db, sandbox)
    with clock.frozen(NOW + timedelta(days=9)):  # would be late, if it were still active
        r = await give_back(client, factory.auth(member), borrowing_id)
    assert_error(r, 400, "already_returned")
    after = await snapshot(db, sandbox)
    assert after == before
    assert after["books"][book.id] == 2
    row = await get_borrowing_row(db, borrowing_id)
    assert row.actual_return_date == date(2026, 3, 3)
    assert [p.type for p in await payment_rows(db)] == ["PAYMENT"]


async def test_return_of_another_members_borrowing_is_404(client, factory, db, sandbox):
    owner = await factory.user()
    intruder = await factory.user()
    book = await factory.book(inventory=2)
    borrowing_id = await _borrow_on(client, factory, owner, book, NOW, date(2026, 3, 5))
    before = await snapshot(db, sandbox)
    with clock.frozen(NOW + timedelta(days=10)):  # late: no fine may appear either
        r = await give_back(client, factory.auth(intruder), borrowing_id)
        missing = await give_back(client, factory.auth(intruder), borrowing_id + 1000)
    assert r.status_code == 404, r.text
    assert missing.status_code == 404
    assert r.json() == missing.json()
    assert await snapshot(db, sandbox) == before
    assert (await get_borrowing_row(db, borrowing_id)).actual_return_date is None
    assert await inventory(db, book.id) == 1


async def test_return_requires_authentication(client, factory, db, sandbox):
    owner = await factory.user()
    book = await factory.book(inventory=2)
    borrowing_id = await _borrow_on(client, factory, owner, book, NOW, date(2026, 3, 5))
    before = await snapshot(db, sandbox)
    r = await client.post(f"{URL}{borrowing_id}/return/")
    assert r.status_code == 401, r.text
    assert await snapshot(db, sandbox) == before


async def test_staff_may_return_anyones_borrowing(client, factory, db):
    owner = await factory.user()
    staff = await factory.user(is_staff=True)
    book = await factory.book(inventory=1)
    borrowing_id = await _borrow_on(client, factory, owner, book, NOW, date(2026, 3, 5))
    assert await inventory(db, book.id) == 0
    with clock.frozen(NOW + timedelta(days=1)):
        r = await give_back(client, factory.auth(staff), borrowing_id)
    assert r.status_code == 200, r.text
    assert r.json()["user_id"] == owner.id
    assert r.json()["actual_return_date"] == "2026-03-02"
    assert await inventory(db, book.id) == 1
    assert (await get_borrowing_row(db, borrowing_id)).actual_return_date == date(2026, 3, 2)


async def test_late_return_adds_a_fine(client, factory, db, sandbox):
    member = await factory.user()
    book = await factory.book(inventory=2, daily_fee=Decimal("1.50"))
    borrowing_id = await _borrow_on(client, factory, member, book, NOW, date(2026, 3, 5))
    with clock.frozen(datetime(2026, 3, 9, 12, tzinfo=UTC)):  # 4 days late
        r = await give_back(client, factory.auth(member), borrowing_id)
        assert r.status_code == 200, r.text
        body = r.json()
        detail = await client.get(f"{URL}{borrowing_id}/", headers=factory.auth(member))
    assert body["actual_return_date"] == "2026-03-09"
    assert body["is_active"] is False
    assert [p["type"] for p in body["payments"]] == ["PAYMENT", "FINE"]
    fee, fine = body["payments"]
    assert fine["money_to_pay"] == "12.00"
    assert fine["status"] == "PENDING"
    assert fine["borrowing_id"] == borrowing_id
    assert fine["session_url"]
    assert fine["session_id"]
    assert fine["session_url"] != fee["session_url"]
    assert fine["session_id"] != fee["session_id"]
    assert detail.status_code == 200, detail.text
    assert detail.json()["payments"] == body["payments"]

    assert await inventory(db, book.id) == 2
    rows = await payment_rows(db, borrowing_id)
    assert [(p.type, p.status, p.money_to_pay) for p in rows] == [
        ("PAYMENT", "PENDING", Decimal("6.00")),
        ("FINE", "PENDING", Decimal("12.00")),
    ]
    assert rows[1].session_id == fine["session_id"]
    session = sandbox.sessions[fine["session_id"]]
    assert session["amount_total"] == 1200
    assert session["status"] == "open"
    assert session["metadata"]["payment_id"] == str(fine["id"])


async def test_late_return_by_staff_fines_the_member(client, factory, db):
    member = await factory.user()
    staff = await factory.user(is_staff=True)
    book = await factory.book(inventory=1, daily_fee=Decimal("1.50"))
    borrowing_id = await _borrow_on(client, factory, member, book, NOW, date(2026, 3, 5))
    with clock.frozen(datetime(2026, 3, 7, 12, tzinfo=UTC)):  # 2 days late
        r = await give_back(client, factory.auth(staff), borrowing_id)
        assert r.status_code == 200, r.text
        # the member now has an unpaid fine
        other = await factory.book(inventory=1, title="Next")
        refused = await borrow(client, factory.auth(member), other.id, date(2026, 3, 9))
    assert [p["money_to_pay"] for p in r.json()["payments"] if p["type"] == "FINE"] == ["6.00"]
    assert_error(refused, 400, "unpaid_fines")
    assert await inventory(db, other.id) == 1


async def test_paying_the_fine_lifts_the_block(client, factory, db, browser):
    member = await factory.user()
    book = await factory.book(inventory=2, daily_fee=Decimal("1.00"))
    borrowing_id = await _borrow_on(client, factory, member, book, NOW, date(2026, 3, 2))
    with clock.frozen(datetime(2026, 3, 4, 12, tzinfo=UTC)):
        headers = factory.auth(member)
        r = await give_back(client, headers, borrowing_id)
        assert r.status_code == 200, r.text
        fine = next(p for p in r.json()["payments"] if p["type"] == "FINE")
        assert fine["money_to_pay"] == "4.00"
        refused = await borrow(client, headers, book.id, date(2026, 3, 6))
        assert_error(refused, 400, "unpaid_fines")
        paid = await browser.post(fine["session_url"] + "/pay")
        assert paid.status_code == 303
        confirmed = await client.get(paid.headers["location"])
        assert confirmed.status_code == 200, confirmed.text
        r = await borrow(client, headers, book.id, date(2026, 3, 6))
    assert r.status_code == 201, r.text
    rows = await payment_rows(db, borrowing_id)
    assert [(p.type, p.status) for p in rows] == [("PAYMENT", "PENDING"), ("FINE", "PAID")]


@pytest.mark.parametrize("bad_id", ["0", "abc", str(2**31)])
async def test_return_bad_id_is_not_a_500(client, factory, bad_id):
    member = await factory.user()
    r = await client.post(f"{URL}{bad_id}/return/", headers=factory.auth(member))
    assert r.status_code in {404, 422}, r.text


# -- the library clock -----------------------------------------------------------------------


async def test_library_date_in_new_york_before_utc_midnight(
    client, factory, db, sandbox, settings, monkeypatch
):
    monkeypatch.setattr(settings, "LIBRARY_TIMEZONE", "America/New_York")
    member = await factory.user()
    book = await factory.book(inventory=3, daily_fee=Decimal("1.50"))
    # 03:30 UTC on 2 March is 22:30 EST on 1 March in the library
    with clock.frozen(datetime(2026, 3, 2, 3, 30, tzinfo=UTC)):
        headers = factory.auth(member)
        before = await snapshot(db, sandbox)
        refused = await borrow(client, headers, book.id, date(2026, 3, 1))
        assert_error(refused, 400, "invalid_return_date")
        assert await snapshot(db, sandbox) == before
        # 60 days after the library's 1 March is 30 April; 1 May is one too many
        too_far = await borrow(client, headers, book.id, date(2026, 5, 1))
        assert_error(too_far, 400, "return_date_too_far")
        assert await snapshot(db, sandbox) == before
        r = await borrow(client, headers, book.id, date(2026, 3, 2))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["borrow_date"] == "2026-03-01"
    assert body["expected_return_date"] == "2026-03-02"
    assert body["payments"][0]["money_to_pay"] == "1.50"  # one day
    row = await get_borrowing_row(db, body["id"])
    assert row.borrow_date == date(2026, 3, 1)
    assert await inventory(db, book.id) == 2


async def test_library_date_in_new_york_after_local_midnight(
    client, factory, db, settings, monkeypatch
):
    monkeypatch.setattr(settings, "LIBRARY_TIMEZONE", "America/New_York")
    member = await factory.user()
    book = await factory.book(inventory=3, daily_fee=Decimal("1.50"))
    # 05:30 UTC on 2 March is 00:30 EST on 2 March: the library's day has turned
    with clock.frozen(datetime(2026, 3, 2, 5, 30, tzinfo=UTC)):
        headers = factory.auth(member)
        refused = await borrow(client, headers, book.id, date(2026, 3, 2))
        assert_error(refused, 400, "invalid_return_date")
        r = await borrow(client, headers, book.id, date(2026, 5, 1))
    assert r.status_code == 201, r.text
    assert r.json()["borrow_date"] == "2026-03-02"
    assert r.json()["payments"][0]["money_to_pay"] == "90.00"


async def test_borrowing_fee_across_the_dst_change(client, factory, db, settings, monkeypatch):
    """7 to 9 March 2026 in New York is 47 hours (clocks spring forward on the 8th) but two
    calendar days."""
    monkeypatch.setattr(settings, "LIBRARY_TIMEZONE", "America/New_York")
    member = await factory.user()
    book = await factory.book(inventory=1, daily_fee=Decimal("1.50"))
    with clock.frozen(datetime(2026, 3, 8, 4, 30, tzinfo=UTC)):  # 23:30 EST on 7 March
        r = await borrow(client, factory.auth(member), book.id, date(2026, 3, 9))
    assert r.status_code == 201, r.text
    assert r.json()["borrow_date"] == "2026-03-07"
    assert r.json()["payments"][0]["money_to_pay"] == "3.00"


@pytest.mark.parametrize(
    ("returned_at", "library_date", "late_days"),
    [
        # 04:30 UTC is 00:30 EDT on 10 March (it would still be 9 March at the winter offset)
        (datetime(2026, 3, 10, 4, 30, tzinfo=UTC), date(2026, 3, 10), 3),
        # 03:30 UTC is 23:30 EDT on 9 March (already 10 March in UTC)
        (datetime(2026, 3, 10, 3, 30, tzinfo=UTC), date(2026, 3, 9), 2),
    ],
)
async def test_late_fine_counts_calendar_days_across_the_dst_change(
    client, factory, db, settings, monkeypatch, returned_at, library_date, late_days
):
    monkeypatch.setattr(settings, "LIBRARY_TIMEZONE", "America/New_York")
    member = await factory.user()
    book = await factory.book(inventory=1, daily_fee=Decimal("1.50"))
    # borrowed at noon EST on 6 March, due 7 March; the clocks change on 8 March
    borrowing_id = await _borrow_on(
        client, factory, member, book, datetime(2026, 3, 6, 17, tzinfo=UTC), date(2026, 3, 7)
    )
    with clock.frozen(returned_at):
        r = await give_back(client, factory.auth(member), borrowing_id)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["borrow_date"] == "2026-03-06"
    assert body["actual_return_date"] == iso(library_date)
    expected = Decimal(late_days) * Decimal("1.50") * 2
    fines = [p for p in body["payments"] if p["type"] == "FINE"]
    assert [p["money_to_pay"] for p in fines] == [f"{expected:.2f}"]
    row = await get_borrowing_row(db, borrowing_id)
    assert row.actual_return_date == library_date
    fine_rows = [p for p in await payment_rows(db, borrowing_id) if p.type == "FINE"]
    assert [p.money_to_pay for p in fine_rows] == [expected]
