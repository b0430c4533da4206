"""POST /api/borrowings/{id}/extend/: a loan's due date moved later, the added days charged as
a new PAYMENT with its own Checkout Session. Each refusal leaves the borrowing, its payments
and the payable Stripe sessions as they were.

Unless a test says otherwise the loan is Emma at 1.50 a day, borrowed on day 0 (2026-03-01)
and due on day 4."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import update

from library_service.models import Book, Borrowing, Hold, Notification, Payment
from library_service.payments.stripe_client import StripeGateway
from tests.factories import (
    StripeDown,
    assert_error,
    assert_refused,
    checkout_requests,
    count,
    day,
    fetch,
    notification_texts,
    on_day,
    open_sessions,
    payments_of,
    snapshot,
)


@pytest.fixture
async def loan(client, factory) -> dict[str, Any]:
    """A member's borrowing through the API: due on day 4, its fee PENDING."""
    member, borrowing = await factory.borrowed(
        client, member=await factory.member(email="reader@example.com"), title="Emma"
    )
    return {"member": member, "borrowing": borrowing, "id": borrowing["id"]}


# -- extending ------------------------------------------------------------------------------


async def test_a_member_extends_their_loan(client, factory, db, sandbox, loan):
    r = await factory.extend(client, loan["member"], loan["id"], day(7), on=2)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["expected_return_date"] == day(7).isoformat()
    assert body["borrow_date"] == day(0).isoformat()
    assert body["extensions"] == 1
    assert body["is_active"] is True
    fee, extension = body["payments"]
    assert (fee["type"], fee["money_to_pay"]) == ("PAYMENT", "6.00")
    assert extension["type"] == "PAYMENT"
    assert extension["status"] == "PENDING"
    assert extension["money_to_pay"] == "4.50"  # 3 more days at 1.50
    assert extension["borrowing_id"] == loan["id"]
    assert extension["session_id"] and extension["session_id"] != fee["session_id"]
    assert extension["session_url"]

    row = await fetch(db, Borrowing, loan["id"])
    assert (row.expected_return_date, row.extensions) == (day(7), 1)
    assert [(p.type, p.status, p.money_to_pay) for p in await payments_of(db, loan["id"])] == [
        ("PAYMENT", "PENDING", Decimal("6.00")),
        ("PAYMENT", "PENDING", Decimal("4.50")),
    ]

    # what Stripe was asked for
    sent = checkout_requests(sandbox)
    assert len(sent) == 2
    item = sent[1]["line_items"][0]
    assert item["price_data"]["unit_amount"] == "450"
    assert item["price_data"]["currency"] == "usd"
    assert item["quantity"] == "1"
    assert "Emma" in item["price_data"]["product_data"]["name"]
    assert sent[1]["metadata"]["payment_id"] == str(extension["id"])
    session = sandbox.sessions[extension["session_id"]]
    assert (session["amount_total"], session["status"]) == (450, "open")
    assert session["url"] == extension["session_url"]

    assert await notification_texts(db, "borrowing_extended") == [
        f"⏩ Extended #{loan['id']}: «Emma» by Jane Austen\n"
        "Member: reader@example.com\n"
        "Due 2026-03-08 instead of 2026-03-05 (+3 days, fee $4.50; extension 1)"
    ]


async def test_staff_extend_any_loan(client, factory, db, loan):
    staff = await factory.staff()
    r = await factory.extend(client, staff, loan["id"], day(5), on=1)
    assert r.status_code == 200, r.text
    assert r.json()["user_id"] == loan["member"].id
    assert r.json()["payments"][-1]["money_to_pay"] == "1.50"
    assert (await fetch(db, Borrowing, loan["id"])).extensions == 1
    [text] = await notification_texts(db, "borrowing_extended")
    assert "Member: reader@example.com" in text  # the borrower, not the staff member


async def test_a_loan_due_today_can_still_be_extended(client, factory, db, loan):
    r = await factory.extend(client, loan["member"], loan["id"], day(6), on=4)
    assert r.status_code == 200, r.text
    assert r.json()["payments"][-1]["money_to_pay"] == "3.00"
    assert (await fetch(db, Borrowing, loan["id"])).expected_return_date == day(6)


async def test_a_loan_is_extended_up_to_max_borrow_days_from_today(
    client, factory, db, sandbox, settings, loan
):
    """The limit counts from today, not from the day the loan began."""
    assert settings.MAX_BORROW_DAYS == 60
    too_far = factory.extend(client, loan["member"], loan["id"], day(63), on=2)
    await assert_refused(db, sandbox, too_far, 400, "return_date_too_far")
    r = await factory.extend(client, loan["member"], loan["id"], day(62), on=2)
    assert r.status_code == 200, r.text
    assert r.json()["payments"][-1]["money_to_pay"] == "87.00"  # 58 days at 1.50


async def test_an_extension_is_charged_at_least_stripes_minimum(client, factory, db, sandbox):
    member, borrowing = await factory.borrowed(client, daily_fee=Decimal("0.10"))
    r = await factory.extend(client, member, borrowing["id"], day(5), on=1)
    assert r.status_code == 200, r.text
    assert r.json()["payments"][-1]["money_to_pay"] == "0.50"
    assert checkout_requests(sandbox)[-1]["line_items"][0]["price_data"]["unit_amount"] == "50"


async def test_each_extension_is_counted_up_to_the_limit(client, factory, db, sandbox, loan):
    """MAX_EXTENSIONS is 2 by default."""
    for n, until in enumerate((day(6), day(8)), start=1):
        r = await factory.extend(client, loan["member"], loan["id"], until, on=1)
        assert r.status_code == 200, r.text
        assert r.json()["extensions"] == n
    third = factory.extend(client, loan["member"], loan["id"], day(10), on=1)
    after = await assert_refused(db, sandbox, third, 400, "extension_limit_reached")
    assert [b[1:] for b in after["borrowings"]] == [(day(8), None, 2)]
    assert len(await payments_of(db, loan["id"])) == 3
    texts = await notification_texts(db, "borrowing_extended")
    assert [text.endswith(f"extension {n})") for n, text in enumerate(texts, start=1)] == [
        True,
        True,
    ]


async def test_the_extension_limit_is_a_setting(
    client, factory, db, sandbox, settings, monkeypatch, loan
):
    monkeypatch.setattr(settings, "MAX_EXTENSIONS", 0)
    request = factory.extend(client, loan["member"], loan["id"], day(6), on=1)
    await assert_refused(db, sandbox, request, 400, "extension_limit_reached")


@pytest.mark.parametrize("status", ["READY", "FULFILLED", "CANCELLED", "EXPIRED"])
async def test_only_a_waiting_hold_stands_in_the_way(client, factory, db, loan, status):
    other = await factory.member()
    book = await fetch(db, Book, loan["borrowing"]["book"]["id"])
    await factory.hold(other, book, status=status)
    r = await factory.extend(client, loan["member"], loan["id"], day(6), on=1)
    assert r.status_code == 200, r.text


# -- refusals change nothing ----------------------------------------------------------------


async def test_a_returned_loan_cannot_be_extended(client, factory, db, sandbox, loan):
    r = await factory.return_book(client, loan["member"], loan["id"], on=2)
    assert r.status_code == 200, r.text
    request = factory.extend(client, loan["member"], loan["id"], day(6), on=2)
    await assert_refused(db, sandbox, request, 400, "already_returned")


@pytest.mark.parametrize("on", [5, 30])
async def test_an_overdue_loan_cannot_be_extended(client, factory, db, sandbox, loan, on):
    request = factory.extend(client, loan["member"], loan["id"], day(on + 5), on=on)
    await assert_refused(db, sandbox, request, 400, "borrowing_overdue")


@pytest.mark.parametrize("until", [day(4), day(3), day(1)], ids=["same", "earlier", "today"])
async def test_the_new_date_must_be_later_than_the_current_one(
    client, factory, db, sandbox, loan, until
):
    request = factory.extend(client, loan["member"], loan["id"], until, on=1)
    await assert_refused(db, sandbox, request, 400, "invalid_extension_date")


async def test_refused_while_another_member_waits_for_the_book(client, factory, db, sandbox, loan):
    other = await factory.member()
    book_id = loan["borrowing"]["book"]["id"]
    await db_set_inventory(db, book_id, 0)
    await factory.place_hold_ok(client, other, book_id, on=1)
    request = factory.extend(client, loan["member"], loan["id"], day(6), on=1)
    await assert_refused(db, sandbox, request, 400, "book_on_hold")


async def test_refused_with_an_unpaid_fine(client, factory, db, sandbox, loan):
    old = await factory.book(inventory=1, title="Returned late")
    late = await factory.borrowing(
        loan["member"], old, borrowed=day(-10), due=day(-5), returned=day(-2)
    )
    await factory.payment(late, type="FINE", status="EXPIRED", amount="9.00")
    request = factory.extend(client, loan["member"], loan["id"], day(6), on=1)
    await assert_refused(db, sandbox, request, 400, "unpaid_fines")


async def test_another_members_loan_is_not_found(client, factory, db, sandbox, loan):
    stranger = await factory.member()
    request = factory.extend(client, stranger, loan["id"], day(6), on=1)
    await assert_refused(db, sandbox, request, 404, "borrowing_not_found")
    request = factory.extend(client, loan["member"], 999_999, day(6), on=1)
    await assert_refused(db, sandbox, request, 404, "borrowing_not_found")


async def test_anonymous_is_refused(client, factory, db, sandbox, loan):
    before = await snapshot(db, sandbox)
    r = await factory.extend(client, {}, loan["id"], day(6), on=1)
    assert_error(r, 401, "not_authenticated")
    assert await snapshot(db, sandbox) == before


@pytest.mark.parametrize("payload", [{}, {"expected_return_date": "soon"}, {"until": "2026-03-09"}])
async def test_a_malformed_body(client, factory, db, sandbox, loan, payload):
    before = await snapshot(db, sandbox)
    url = f"/api/borrowings/{loan['id']}/extend/"
    r = await client.post(url, json=payload, headers=factory.auth(loan["member"]))
    assert r.status_code == 422, r.text
    assert await snapshot(db, sandbox) == before


async def test_stripe_down_changes_nothing(client, factory, db, sandbox, stripe_mock, loan):
    with StripeDown(stripe_mock):
        request = factory.extend(client, loan["member"], loan["id"], day(6), on=1)
        await assert_refused(db, sandbox, request, 503, "payment_provider_unavailable")
    assert len(sandbox.sessions) == 1  # the loan's own fee
    # Stripe is back: the extension goes through
    r = await factory.extend(client, loan["member"], loan["id"], day(6), on=1)
    assert r.status_code == 200, r.text
    assert (await fetch(db, Borrowing, loan["id"])).extensions == 1


# -- the loan changes while Stripe is asked -------------------------------------------------


async def db_set_inventory(db, book_id: int, copies: int) -> None:
    async with db.sessionmaker() as s, s.begin():
        await s.execute(update(Book).where(Book.id == book_id).values(inventory=copies))


def meanwhile(monkeypatch, change) -> None:  # type: ignore[no-untyped-def]
    """`change()` runs while Stripe is asked for the extension's session."""
    create_session = StripeGateway.create_checkout_session

    async def changed_meanwhile(self, **kwargs):  # type: ignore[no-untyped-def]
        await change()
        return await create_session(self, **kwargs)

    monkeypatch.setattr(StripeGateway, "create_checkout_session", changed_meanwhile)


async def test_refused_when_the_fee_changes_while_stripe_is_asked(
    client, factory, db, sandbox, monkeypatch, loan
):
    async def raise_fee() -> None:
        async with db.sessionmaker() as s, s.begin():
            book_id = loan["borrowing"]["book"]["id"]
            await s.execute(update(Book).where(Book.id == book_id).values(daily_fee=3))

    meanwhile(monkeypatch, raise_fee)
    request = factory.extend(client, loan["member"], loan["id"], day(6), on=1)
    await assert_refused(db, sandbox, request, 409, "fee_changed")
    extension_session = list(sandbox.sessions.values())[-1]
    assert extension_session["amount_total"] == 300  # priced at the old fee, never payable
    assert extension_session["status"] == "expired"


async def test_refused_when_the_due_date_changes_while_stripe_is_asked(
    client, factory, db, sandbox, monkeypatch, loan
):
    """Another extension (or staff) moved the due date: the price was for other days."""

    async def move_due_date() -> None:
        async with db.sessionmaker() as s, s.begin():
            await s.execute(
                update(Borrowing)
                .where(Borrowing.id == loan["id"])
                .values(expected_return_date=day(5))
            )

    meanwhile(monkeypatch, move_due_date)
    messages = await count(db, Notification)
    r = await factory.extend(client, loan["member"], loan["id"], day(7), on=1)
    assert_error(r, 409, "borrowing_changed")
    row = await fetch(db, Borrowing, loan["id"])
    assert (row.expected_return_date, row.extensions) == (day(5), 0)
    assert len(await payments_of(db, loan["id"])) == 1
    assert await count(db, Notification) == messages
    assert open_sessions(sandbox) == [loan["borrowing"]["payments"][0]["session_id"]]
    assert list(sandbox.sessions.values())[-1]["status"] == "expired"


@pytest.mark.parametrize(
    ("change", "code"),
    [("hold placed", "book_on_hold"), ("fine recorded", "unpaid_fines")],
)
async def test_the_rules_are_checked_again_after_stripe_answers(
    client, factory, db, sandbox, monkeypatch, loan, change, code
):
    other = await factory.member()
    book = await fetch(db, Book, loan["borrowing"]["book"]["id"])
    old = await factory.book(inventory=1, title="Returned late")

    async def rule_broken() -> None:
        if change == "hold placed":
            await factory.hold(other, book)
        else:
            late = await factory.borrowing(
                loan["member"], old, borrowed=day(-10), due=day(-5), returned=day(-2)
            )
            await factory.payment(late, type="FINE", status="PENDING", amount="9.00")

    meanwhile(monkeypatch, rule_broken)
    r = await factory.extend(client, loan["member"], loan["id"], day(6), on=1)
    assert_error(r, 400, code)
    row = await fetch(db, Borrowing, loan["id"])
    assert (row.expected_return_date, row.extensions) == (day(4), 0)
    assert await count(db, Payment, Payment.type == "PAYMENT") == 1
    assert list(sandbox.sessions.values())[-1]["status"] == "expired"
    assert len(open_sessions(sandbox)) == 1
    assert await count(db, Hold) == (1 if change == "hold placed" else 0)


@pytest.mark.slow
@pytest.mark.parametrize("until", [day(6), None], ids=["same-date", "different-dates"])
async def test_concurrent_extensions_of_one_loan(
    client, factory, db, sandbox, loan, until: date | None
):
    """Pressed several times at once: exactly one extension is recorded and charged; the
    others are refused and their sessions expired."""
    staff = await factory.staff()
    who = [loan["member"], staff] * 3
    targets = [until or day(5 + i) for i in range(len(who))]
    with on_day(1):
        responses = await asyncio.gather(
            *(
                factory.extend(client, user, loan["id"], target)
                for user, target in zip(who, targets, strict=True)
            )
        )
    outcomes = Counter(
        (r.status_code, None if r.status_code == 200 else r.json()["code"]) for r in responses
    )
    print("\nconcurrent extensions:", dict(outcomes))
    assert outcomes[(200, None)] == 1
    assert set(outcomes) <= {
        (200, None),
        (400, "invalid_extension_date"),
        (409, "borrowing_changed"),
    }
    [won] = [r.json() for r in responses if r.status_code == 200]
    row = await fetch(db, Borrowing, loan["id"])
    assert (row.expected_return_date.isoformat(), row.extensions) == (
        won["expected_return_date"],
        1,
    )
    assert len(await payments_of(db, loan["id"])) == 2
    assert sorted(open_sessions(sandbox)) == sorted(p["session_id"] for p in won["payments"])
    assert await count(db, Notification, Notification.kind == "borrowing_extended") == 1
