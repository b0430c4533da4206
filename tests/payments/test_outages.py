"""Stripe down: a borrowing answers 503 with nothing changed; a late return is recorded
with a fine that gets its session once Stripe answers (renewal or the worker)."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from library_service.models import Borrowing, Notification, Payment
from library_service.payments import tasks
from tests.factories import (
    StripeDown,
    assert_error,
    count,
    day,
    fetch,
    inventory,
    pay,
    stripe_500,
    task_ctx,
    the_payment,
)

OUTAGES = [
    pytest.param(httpx.ConnectTimeout, id="connect-timeout"),
    pytest.param(httpx.ConnectError, id="connect-error"),
    pytest.param(stripe_500, id="http-500"),
]


@pytest.mark.parametrize("effect", OUTAGES)
async def test_borrow_with_stripe_down_is_503_and_changes_nothing(
    client, factory, db, sandbox, stripe_mock, effect
):
    member = await factory.member()
    book = await factory.book(inventory=3)
    with StripeDown(stripe_mock, effect):
        response = await factory.borrow(client, member, book, on=0)
    assert_error(response, 503, "payment_provider_unavailable")
    assert await count(db, Borrowing) == 0
    assert await count(db, Payment) == 0
    assert await count(db, Notification) == 0
    assert await inventory(db, book.id) == 3
    assert sandbox.sessions == {}

    # Stripe is back: borrowing works and leaves exactly one of everything.
    borrowing = await factory.borrow_ok(client, member, book, on=0)
    assert await count(db, Borrowing) == 1
    assert await count(db, Payment) == 1
    assert await inventory(db, book.id) == 2
    assert the_payment(borrowing)["session_id"] in sandbox.sessions


@pytest.mark.parametrize("effect", OUTAGES)
async def test_late_return_with_stripe_down_is_recorded_with_sessionless_fine(
    client, factory, db, sandbox, stripe_mock, effect
):
    member = await factory.member()
    book = await factory.book(inventory=1, daily_fee=Decimal("1.50"))
    borrowing = await factory.borrow_ok(client, member, book, days=4, on=0)
    assert await inventory(db, book.id) == 0

    with StripeDown(stripe_mock, effect):
        response = await factory.return_book(client, member, borrowing["id"], on=7)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["actual_return_date"] == day(7).isoformat()
    fine = the_payment(body, "FINE")
    assert fine["status"] == "PENDING"
    assert fine["money_to_pay"] == "9.00"  # 3 days * 1.50 * 2
    assert fine["session_id"] is None
    assert fine["session_url"] is None

    assert (await fetch(db, Borrowing, borrowing["id"])).actual_return_date == day(7)
    assert await inventory(db, book.id) == 1
    fine_row = await fetch(db, Payment, fine["id"])
    assert (fine_row.type, fine_row.status, fine_row.session_id) == ("FINE", "PENDING", None)
    assert fine_row.money_to_pay == Decimal("9.00")

    # A second return is still refused.
    again = await factory.return_book(client, member, borrowing["id"], on=7)
    assert again.status_code == 400
    assert await inventory(db, book.id) == 1


async def test_sessionless_fine_gets_a_session_on_renew(
    client, browser, factory, db, sandbox, stripe_mock
):
    member = await factory.member()
    book = await factory.book(title="Beloved", daily_fee=Decimal("1.50"))
    borrowing = await factory.borrow_ok(client, member, book, days=4, on=0)
    with StripeDown(stripe_mock):
        returned = await factory.return_book(client, member, borrowing["id"], on=6)
    fine = the_payment(returned.json(), "FINE")
    assert fine["session_id"] is None

    # While Stripe is still down, renewing fails and changes nothing.
    with StripeDown(stripe_mock):
        down = await factory.renew(client, member, fine["id"])
    assert_error(down, 503, "payment_provider_unavailable")
    assert (await fetch(db, Payment, fine["id"])).session_id is None

    response = await factory.renew(client, member, fine["id"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "PENDING"
    assert body["type"] == "FINE"
    assert body["session_id"] and body["session_url"]
    row = await fetch(db, Payment, fine["id"])
    assert (row.status, row.session_id, row.session_url) == (
        "PENDING",
        body["session_id"],
        body["session_url"],
    )
    session = sandbox.sessions[body["session_id"]]
    assert session["amount_total"] == 600  # 2 days * 1.50 * 2
    assert session["metadata"] == {"payment_id": str(fine["id"])}
    assert "Beloved" in session["line_items_preview"]["name"]

    paid = await pay(client, browser, body["session_url"])
    assert paid.status_code == 200, paid.text
    assert (await fetch(db, Payment, fine["id"])).status == "PAID"


async def test_sessionless_fine_gets_a_session_from_the_worker(
    client, browser, app, factory, db, settings, sandbox, stripe_mock
):
    member = await factory.member()
    book = await factory.book(daily_fee=Decimal("1.50"))
    borrowing = await factory.borrow_ok(client, member, book, days=4, on=0)
    with StripeDown(stripe_mock):
        returned = await factory.return_book(client, member, borrowing["id"], on=5)
    fine = the_payment(returned.json(), "FINE")
    assert fine["session_id"] is None
    ctx = task_ctx(app, db, settings)

    with StripeDown(stripe_mock):
        assert await tasks.attach_missing_sessions(ctx) == 0
    assert (await fetch(db, Payment, fine["id"])).session_id is None
    # The expiry poll leaves a payment without a session alone.
    await tasks.poll_expired_sessions(ctx)
    assert (await fetch(db, Payment, fine["id"])).status == "PENDING"

    assert await tasks.attach_missing_sessions(ctx) == 1
    row = await fetch(db, Payment, fine["id"])
    assert row.status == "PENDING"
    assert row.session_id and row.session_id in sandbox.sessions
    assert row.session_url == sandbox.sessions[row.session_id]["url"]
    assert sandbox.sessions[row.session_id]["metadata"] == {"payment_id": str(fine["id"])}
    assert sandbox.sessions[row.session_id]["amount_total"] == 300

    # Running it again (or the per-payment job) changes nothing.
    assert await tasks.attach_missing_sessions(ctx) == 0
    assert await tasks.attach_missing_session(ctx, fine["id"]) is False
    assert (await fetch(db, Payment, fine["id"])).session_id == row.session_id

    detail = await client.get(f"/api/payments/{fine['id']}/", headers=factory.auth(member))
    assert detail.json()["session_url"] == row.session_url
    page = await browser.get(row.session_url)
    assert page.status_code == 200
    assert "$3.00" in page.text
