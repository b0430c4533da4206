"""The library clock: dates are the library's calendar dates in LIBRARY_TIMEZONE, on either
side of midnight and across a daylight-saving change."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from library_service.core import clock
from library_service.models import Borrowing
from tests.factories import (
    assert_error,
    assert_refused,
    fetch,
    inventory,
    payments_of,
)


@pytest.fixture
def in_new_york(settings, monkeypatch) -> None:
    monkeypatch.setattr(settings, "LIBRARY_TIMEZONE", "America/New_York")


async def test_library_date_in_new_york_before_utc_midnight(
    client, factory, db, sandbox, in_new_york
):
    member = await factory.member()
    book = await factory.book(inventory=3, daily_fee=Decimal("1.50"))
    # 03:30 UTC on 2 March is 22:30 EST on 1 March in the library
    with clock.frozen(datetime(2026, 3, 2, 3, 30, tzinfo=UTC)):
        today = factory.borrow(client, member, book, until=date(2026, 3, 1))
        await assert_refused(db, sandbox, today, 400, "invalid_return_date")
        # 60 days after the library's 1 March is 30 April; 1 May is one too many
        too_far = factory.borrow(client, member, book, until=date(2026, 5, 1))
        await assert_refused(db, sandbox, too_far, 400, "return_date_too_far")
        r = await factory.borrow(client, member, book, until=date(2026, 3, 2))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["borrow_date"] == "2026-03-01"
    assert body["expected_return_date"] == "2026-03-02"
    assert body["payments"][0]["money_to_pay"] == "1.50"  # one day
    row = await fetch(db, Borrowing, body["id"])
    assert row.borrow_date == date(2026, 3, 1)
    assert await inventory(db, book.id) == 2


async def test_library_date_in_new_york_after_local_midnight(client, factory, db, in_new_york):
    member = await factory.member()
    book = await factory.book(inventory=3, daily_fee=Decimal("1.50"))
    # 05:30 UTC on 2 March is 00:30 EST on 2 March: the library's day has turned
    with clock.frozen(datetime(2026, 3, 2, 5, 30, tzinfo=UTC)):
        refused = await factory.borrow(client, member, book, until=date(2026, 3, 2))
        assert_error(refused, 400, "invalid_return_date")
        r = await factory.borrow(client, member, book, until=date(2026, 5, 1))
    assert r.status_code == 201, r.text
    assert r.json()["borrow_date"] == "2026-03-02"
    assert r.json()["payments"][0]["money_to_pay"] == "90.00"


async def test_borrowing_fee_across_the_dst_change(client, factory, db, in_new_york):
    """7 to 9 March 2026 in New York is 47 hours (clocks spring forward on the 8th) but two
    calendar days."""
    member = await factory.member()
    book = await factory.book(inventory=1, daily_fee=Decimal("1.50"))
    with clock.frozen(datetime(2026, 3, 8, 4, 30, tzinfo=UTC)):  # 23:30 EST on 7 March
        r = await factory.borrow(client, member, book, until=date(2026, 3, 9))
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
    client, factory, db, in_new_york, returned_at, library_date, late_days
):
    member = await factory.member()
    book = await factory.book(inventory=1, daily_fee=Decimal("1.50"))
    # borrowed at noon EST on 6 March, due 7 March; the clocks change on 8 March
    with clock.frozen(datetime(2026, 3, 6, 17, tzinfo=UTC)):
        borrowing = await factory.borrow_ok(client, member, book, until=date(2026, 3, 7))
    with clock.frozen(returned_at):
        r = await factory.return_book(client, member, borrowing["id"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["borrow_date"] == "2026-03-06"
    assert body["actual_return_date"] == library_date.isoformat()
    expected = Decimal(late_days) * Decimal("1.50") * 2
    fines = [p for p in body["payments"] if p["type"] == "FINE"]
    assert [p["money_to_pay"] for p in fines] == [f"{expected:.2f}"]
    row = await fetch(db, Borrowing, borrowing["id"])
    assert row.actual_return_date == library_date
    fine_rows = [p for p in await payments_of(db, borrowing["id"]) if p.type == "FINE"]
    assert [p.money_to_pay for p in fine_rows] == [expected]
