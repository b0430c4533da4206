"""Fines: a late return adds one, priced by the rules, and an unpaid fine (PENDING, EXPIRED,
or still without a Checkout Session) blocks borrowing until it is paid."""

from __future__ import annotations

from decimal import Decimal

import pytest

from library_service.models import Borrowing, Payment
from library_service.payments import tasks
from tests.factories import (
    StripeDown,
    assert_error,
    assert_refused,
    checkout_requests,
    count,
    day,
    fetch,
    inventory,
    on_day,
    pay,
    payments_of,
    task_ctx,
    the_payment,
)

# -- a late return adds a fine --------------------------------------------------------------


async def test_late_return_adds_a_fine(client, factory, db, sandbox):
    member, borrowing = await factory.borrowed(client, inventory=2, daily_fee=Decimal("1.50"))
    borrowing_id, book_id = borrowing["id"], borrowing["book"]["id"]
    with on_day(8):  # 4 days late
        r = await factory.return_book(client, member, borrowing_id)
        assert r.status_code == 200, r.text
        body = r.json()
        detail = await client.get(f"/api/borrowings/{borrowing_id}/", headers=factory.auth(member))
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

    assert await inventory(db, book_id) == 2
    rows = await payments_of(db, borrowing_id)
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
    member, borrowing = await factory.borrowed(client, inventory=1, daily_fee=Decimal("1.50"))
    staff = await factory.staff()
    with on_day(6):  # 2 days late
        r = await factory.return_book(client, staff, borrowing["id"])
        assert r.status_code == 200, r.text
        # the member now has an unpaid fine
        other = await factory.book(inventory=1, title="Next")
        refused = await factory.borrow(client, member, other, until=day(8))
    assert [p["money_to_pay"] for p in r.json()["payments"] if p["type"] == "FINE"] == ["6.00"]
    assert_error(refused, 400, "unpaid_fines")
    assert await inventory(db, other.id) == 1


async def test_return_of_a_borrowing_from_weeks_ago_is_fined_for_the_days_late(
    client, factory, db, sandbox, frozen_today
):
    member = await factory.member()
    book = await factory.book(inventory=0, daily_fee=Decimal("1.50"))  # its copy is out
    overdue = await factory.overdue_borrowing(member, book, days_late=3, borrowed_days_ago=30)
    r = await factory.return_book(client, member, overdue.id)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["borrow_date"], body["actual_return_date"]) == ("2026-01-30", "2026-03-01")
    fine = the_payment(body, "FINE")
    assert fine["money_to_pay"] == "9.00"  # 3 days late * 1.50 * 2, whatever the loan's length
    assert [(p.type, p.money_to_pay) for p in await payments_of(db, overdue.id)] == [
        ("FINE", Decimal("9.00"))
    ]
    assert sandbox.sessions[fine["session_id"]]["amount_total"] == 900
    assert await inventory(db, book.id) == 1


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
    member = await factory.member()
    book = await factory.book(inventory=1, daily_fee=Decimal(fee))
    borrowing_id = (await factory.borrow_ok(client, member, book, days=5, on=0))["id"]
    r = await factory.return_book(client, member, borrowing_id, on=5 + late_days)
    assert r.status_code == 200, r.text
    fines = [p for p in r.json()["payments"] if p["type"] == "FINE"]
    assert len(fines) == 1
    assert fines[0]["money_to_pay"] == expected
    assert fines[0]["session_id"]
    rows = [p for p in await payments_of(db, borrowing_id) if p.type == "FINE"]
    assert len(rows) == 1
    assert rows[0].money_to_pay == Decimal(expected)
    cents = int(Decimal(expected) * 100)
    assert checkout_requests(sandbox)[-1]["line_items"][0]["price_data"]["unit_amount"] == str(
        cents
    )
    assert sandbox.sessions[fines[0]["session_id"]]["amount_total"] == cents


# -- an unpaid fine blocks borrowing ------------------------------------------------------------


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
    member = await factory.member()
    old_book = await factory.book(inventory=1, title="Old")
    book = await factory.book(inventory=2, title="New")
    old = await factory.borrowing(
        member, old_book, borrowed=day(-20), due=day(-18), returned=day(-14)
    )
    await factory.payment(old, type=payment_type, status=status)
    request = factory.borrow(client, member, book, days=3)
    if blocked:
        await assert_refused(db, sandbox, request, 400, "unpaid_fines")
    else:
        r = await request
        assert r.status_code == 201, r.text
        assert await inventory(db, book.id) == 1
        assert await count(db, Borrowing, Borrowing.user_id == member.id) == 2


async def test_another_members_unpaid_fine_does_not_block_me(client, factory, db, frozen_today):
    member = await factory.member()
    other = await factory.member()
    book = await factory.book(inventory=2)
    old = await factory.borrowing(other, book, borrowed=day(-20), due=day(-18), returned=day(-14))
    await factory.payment(old, type="FINE", status="PENDING")
    r = await factory.borrow(client, member, book, days=3)
    assert r.status_code == 201, r.text
    assert await inventory(db, book.id) == 1


async def test_paying_the_fine_lifts_the_block(client, browser, factory, db, sandbox):
    member = await factory.member()
    book = await factory.book(inventory=2, daily_fee=Decimal("1.00"))
    second = await factory.book(inventory=2, title="Second")
    borrowing_id = (await factory.borrow_ok(client, member, book, days=1, on=0))["id"]
    with on_day(3):
        r = await factory.return_book(client, member, borrowing_id)
        assert r.status_code == 200, r.text
        fine = the_payment(r.json(), "FINE")
        assert fine["money_to_pay"] == "4.00"
        sessions_before = len(sandbox.sessions)

        refused = await factory.borrow(client, member, second, days=2)
        assert_error(refused, 400, "unpaid_fines")
        assert "fine" in refused.json()["detail"].lower()
        assert await count(db, Borrowing) == 1
        assert await inventory(db, second.id) == 2
        assert len(sandbox.sessions) == sessions_before  # no session opened for nothing

        paid = await pay(client, browser, fine["session_url"])
        assert paid.status_code == 200, paid.text
        assert (await fetch(db, Payment, fine["id"])).status == "PAID"
        r = await factory.borrow(client, member, second, days=2)
    assert r.status_code == 201, r.text
    assert await inventory(db, second.id) == 1
    rows = await payments_of(db, borrowing_id)
    assert [(p.type, p.status) for p in rows] == [("PAYMENT", "PENDING"), ("FINE", "PAID")]


async def test_expired_fine_blocks_borrowing(
    client, app, factory, db, settings, sandbox, frozen_today
):
    member = await factory.member()
    first = await factory.book(title="First")
    second = await factory.book(title="Second")
    borrowing = await factory.borrow_ok(client, member, first, days=2)
    returned = await factory.return_book(client, member, borrowing["id"], on=3)
    fine = the_payment(returned.json(), "FINE")
    sandbox.mark_expired(fine["session_id"])
    await tasks.poll_expired_sessions(task_ctx(app, db, settings))
    assert (await fetch(db, Payment, fine["id"])).status == "EXPIRED"

    assert_error(await factory.borrow(client, member, second), 400, "unpaid_fines")


async def test_sessionless_fine_blocks_borrowing(client, factory, db, stripe_mock, frozen_today):
    member = await factory.member()
    first = await factory.book(title="First")
    second = await factory.book(title="Second")
    borrowing = await factory.borrow_ok(client, member, first, days=2)
    with StripeDown(stripe_mock):
        returned = await factory.return_book(client, member, borrowing["id"], on=3)
    assert returned.status_code == 200
    assert the_payment(returned.json(), "FINE")["session_id"] is None
    assert_error(await factory.borrow(client, member, second), 400, "unpaid_fines")
