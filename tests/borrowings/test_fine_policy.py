"""The fine policy: FINE_GRACE_DAYS late cost nothing, and FINE_MAX_AMOUNT is the most one
late return can cost. With the defaults (no grace, no cap) a fine stays days late x daily
fee x FINE_MULTIPLIER. Through a late return, and at the boundaries of `rules.fine`.

Loans here are borrowed on day 0 (2026-03-01), due on day 4, at 1.50 a day."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from library_service.borrowings import rules
from library_service.core.config import Settings
from library_service.core.money import MAX_CHARGE
from library_service.models import Book, Borrowing, Payment
from tests.factories import (
    TODAY,
    checkout_requests,
    count,
    day,
    inventory,
    notification_texts,
    payments_of,
)

DEFAULTS = Settings(_env_file=None)  # type: ignore[call-arg]


def fines(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [p["money_to_pay"] for p in response.json()["payments"] if p["type"] == "FINE"]


async def late_return(client, factory, *, days_late: int, daily_fee: str = "1.50"):
    member, borrowing = await factory.borrowed(client, daily_fee=Decimal(daily_fee))
    response = await factory.return_book(client, member, borrowing["id"], on=4 + days_late)
    return response, borrowing


# -- the defaults keep today's rule -----------------------------------------------------------


def test_the_defaults_are_no_grace_and_no_cap():
    assert DEFAULTS.FINE_GRACE_DAYS == 0
    assert DEFAULTS.FINE_MAX_AMOUNT is None
    assert DEFAULTS.FINE_MULTIPLIER == 2


@pytest.mark.parametrize(("days_late", "expected"), [(1, "3.00"), (10, "30.00"), (200, "600.00")])
async def test_with_the_defaults_every_day_late_is_fined(
    client, factory, db, sandbox, settings, days_late, expected
):
    assert (settings.FINE_GRACE_DAYS, settings.FINE_MAX_AMOUNT) == (0, None)
    response, borrowing = await late_return(client, factory, days_late=days_late)
    assert fines(response) == [expected]  # days late x 1.50 x 2
    rows = await payments_of(db, borrowing["id"])
    assert [(p.type, p.money_to_pay) for p in rows][-1] == ("FINE", Decimal(expected))
    cents = str(int(Decimal(expected) * 100))
    assert checkout_requests(sandbox)[-1]["line_items"][0]["price_data"]["unit_amount"] == cents


async def test_with_the_defaults_a_return_on_the_due_date_is_not_fined(client, factory, db):
    response, _ = await late_return(client, factory, days_late=0)
    assert fines(response) == []
    assert await count(db, Payment, Payment.type == "FINE") == 0


# -- grace days ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grace", "days_late", "expected"),
    [
        (2, 1, []),
        (2, 2, []),  # late by exactly the grace: nothing
        (2, 3, ["3.00"]),  # one more day: one day's fine
        (2, 5, ["9.00"]),
        (1, 1, []),
        (1, 2, ["3.00"]),
    ],
)
async def test_grace_days_cost_nothing(
    client, factory, db, sandbox, settings, monkeypatch, grace, days_late, expected
):
    monkeypatch.setattr(settings, "FINE_GRACE_DAYS", grace)
    response, borrowing = await late_return(client, factory, days_late=days_late)
    assert fines(response) == expected
    assert await count(db, Payment, Payment.type == "FINE") == len(expected)
    assert len(checkout_requests(sandbox)) == 1 + len(expected)  # the loan's fee, any fine
    assert await inventory(db, borrowing["book"]["id"]) == 5


async def test_a_return_within_the_grace_leaves_the_member_free_to_borrow(
    client, factory, db, settings, monkeypatch
):
    monkeypatch.setattr(settings, "FINE_GRACE_DAYS", 3)
    member, borrowing = await factory.borrowed(client)
    response = await factory.return_book(client, member, borrowing["id"], on=7)
    assert fines(response) == []
    [told] = [text for text in await notification_texts(db) if text.startswith("↩️")]
    assert told.endswith("3 days late, within the grace days: no fine")
    other = await factory.book(inventory=1, title="Next")
    await factory.borrow_ok(client, member, other, days=2, on=7)


# -- the most one late return costs -------------------------------------------------------------


@pytest.mark.parametrize(
    ("cap", "days_late", "expected"),
    [
        ("5.00", 1, "3.00"),  # under the cap
        ("6.00", 2, "6.00"),  # exactly the cap
        ("5.00", 2, "5.00"),  # 6.00, capped
        ("5.00", 200, "5.00"),
        ("0.50", 1, "0.50"),  # the lowest cap allowed: Stripe's minimum
    ],
)
async def test_a_fine_is_at_most_the_cap(
    client, factory, db, sandbox, settings, monkeypatch, cap, days_late, expected
):
    monkeypatch.setattr(settings, "FINE_MAX_AMOUNT", Decimal(cap))
    response, borrowing = await late_return(client, factory, days_late=days_late)
    assert fines(response) == [expected]
    [fine] = [p for p in await payments_of(db, borrowing["id"]) if p.type == "FINE"]
    assert fine.money_to_pay == Decimal(expected)
    cents = str(int(Decimal(expected) * 100))
    assert checkout_requests(sandbox)[-1]["line_items"][0]["price_data"]["unit_amount"] == cents
    [text] = await notification_texts(db, "borrowing_returned")
    assert text.endswith(f"late, fine ${expected}")  # staff are told the fine charged


async def test_grace_and_cap_together(client, factory, db, settings, monkeypatch):
    monkeypatch.setattr(settings, "FINE_GRACE_DAYS", 2)
    monkeypatch.setattr(settings, "FINE_MAX_AMOUNT", Decimal("10.00"))
    response, _ = await late_return(client, factory, days_late=5)  # 3 days charged: 9.00
    assert fines(response) == ["9.00"]
    response, _ = await late_return(client, factory, days_late=6)  # 4 days charged: 12.00
    assert fines(response) == ["10.00"]


# -- rules.fine at the boundaries -----------------------------------------------------------------


def book(daily_fee: str = "1.50") -> Book:
    return Book(title="Emma", author="Jane Austen", inventory=1, daily_fee=Decimal(daily_fee))


def loan(due: date = day(4)) -> Borrowing:
    return Borrowing(borrow_date=TODAY, expected_return_date=due)


def policy(grace: int = 0, cap: str | None = None, multiplier: str = "2") -> Settings:
    return DEFAULTS.model_copy(
        update={
            "FINE_GRACE_DAYS": grace,
            "FINE_MAX_AMOUNT": None if cap is None else Decimal(cap),
            "FINE_MULTIPLIER": Decimal(multiplier),
        }
    )


@pytest.mark.parametrize(
    ("grace", "returned", "expected"),
    [
        (0, day(4), None),  # on the due date
        (0, day(5), "3.00"),
        (3, day(5), None),
        (3, day(7), None),  # late by exactly the grace
        (3, day(8), "3.00"),  # the first day past it
        (3, day(14), "21.00"),  # 10 late, 7 charged
        (3, day(-2), None),  # early
    ],
)
def test_fine_with_grace_days(grace, returned, expected):
    amount = rules.fine(loan(), book(), today=returned, settings=policy(grace=grace))
    assert amount == (None if expected is None else Decimal(expected))


@pytest.mark.parametrize(
    ("cap", "fee", "returned", "expected"),
    [
        (None, "1.50", day(5), "3.00"),
        (None, "1000.00", day(400), "792000.00"),  # uncapped: days x fee x 2
        (None, "1000.00", day(1000), str(MAX_CHARGE)),  # never more than one card payment
        ("10.00", "1.50", day(7), "9.00"),  # under the cap
        ("10.00", "1.50", day(8), "10.00"),  # 12.00 capped
        ("9.00", "1.50", day(7), "9.00"),  # exactly the cap
        ("0.50", "0.10", day(5), "0.50"),  # the minimum charge is never capped below itself
        ("1.99", "0.35", day(9), "1.99"),  # 3.50, capped at a cap with odd cents
    ],
)
def test_fine_with_a_cap(cap, fee, returned, expected):
    amount = rules.fine(loan(), book(fee), today=returned, settings=policy(cap=cap))
    assert amount == Decimal(expected)


def test_the_cap_applies_after_the_grace_and_the_multiplier():
    settings = policy(grace=1, cap="5.00", multiplier="3")
    assert rules.fine(loan(), book(), today=day(5), settings=settings) is None
    assert rules.fine(loan(), book(), today=day(6), settings=settings) == Decimal("4.50")
    assert rules.fine(loan(), book(), today=day(7), settings=settings) == Decimal("5.00")


@pytest.mark.parametrize("cap", ["0.49", "0", "-1", "1000000.00"])
def test_the_cap_must_be_a_chargeable_amount(cap):
    with pytest.raises(ValueError, match="FINE_MAX_AMOUNT"):
        Settings(_env_file=None, FINE_MAX_AMOUNT=cap)  # type: ignore[call-arg]


def test_grace_days_cannot_be_negative():
    with pytest.raises(ValueError, match="FINE_GRACE_DAYS"):
        Settings(_env_file=None, FINE_GRACE_DAYS=-1)  # type: ignore[call-arg]
