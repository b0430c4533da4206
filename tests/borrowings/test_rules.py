"""The loan rules (borrowings/rules.py), each at its boundaries, without HTTP: the same
rules the API tests reach through a request, seen where they are decided.

Dates are day 0 (2026-03-01) and around it; the settings are the defaults, spelled out.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from library_service.borrowings import rules
from library_service.borrowings.errors import (
    AlreadyReturnedError,
    BookUnavailableError,
    FeeChangedError,
    InvalidReturnDateError,
    LoanLimitReachedError,
    ReturnDateTooFarError,
    UnpaidFinesError,
)
from library_service.borrowings.repository import BorrowingRepository
from library_service.borrowings.rules import BorrowFacts, Standing
from library_service.core.config import Settings
from library_service.core.money import as_integer_cents, chargeable, to_cents
from library_service.models import Book, Borrowing
from tests.factories import TODAY, day

MAX_DAYS = 60
LIMIT = 3
RULES = Settings(
    _env_file=None,  # type: ignore[call-arg]
    MAX_BORROW_DAYS=MAX_DAYS,
    MAX_ACTIVE_BORROWINGS=LIMIT,
    FINE_MULTIPLIER=Decimal("2"),
)
IN_GOOD_STANDING = Standing(active_borrowings=0, has_unpaid_fine=False)


def book(*, inventory: int = 1, daily_fee: str = "1.50") -> Book:
    return Book(
        title="Emma", author="Jane Austen", inventory=inventory, daily_fee=Decimal(daily_fee)
    )


def loan_facts(book: Book, standing: Standing, *, ready_hold_id: int | None = None) -> BorrowFacts:
    return BorrowFacts(book=book, standing=standing, ready_hold_id=ready_hold_id)


def loan(*, borrowed: date = TODAY, due: date = day(4), returned: date | None = None) -> Borrowing:
    return Borrowing(borrow_date=borrowed, expected_return_date=due, actual_return_date=returned)


# -- check_return_date: after today, at most MAX_BORROW_DAYS ahead ------------------------------


@pytest.mark.parametrize("until", [day(1), day(2), day(MAX_DAYS - 1), day(MAX_DAYS)])
def test_a_return_date_from_tomorrow_to_max_borrow_days_ahead_is_accepted(until):
    assert rules.check_return_date(until, today=TODAY, settings=RULES) is None


@pytest.mark.parametrize("until", [TODAY, day(-1), day(-400)])
def test_a_return_date_today_or_before_is_refused(until):
    with pytest.raises(InvalidReturnDateError):
        rules.check_return_date(until, today=TODAY, settings=RULES)


@pytest.mark.parametrize("until", [day(MAX_DAYS + 1), day(365)])
def test_a_return_date_past_max_borrow_days_is_refused_naming_the_last_day(until):
    with pytest.raises(ReturnDateTooFarError) as refused:
        rules.check_return_date(until, today=TODAY, settings=RULES)
    assert refused.value.message == (
        f"expected_return_date can be at most {MAX_DAYS} days ahead (on or before 2026-04-30)."
    )


def test_max_borrow_days_comes_from_the_settings():
    week = RULES.model_copy(update={"MAX_BORROW_DAYS": 7})
    rules.check_return_date(day(7), today=TODAY, settings=week)
    with pytest.raises(ReturnDateTooFarError, match="at most 7 days"):
        rules.check_return_date(day(8), today=TODAY, settings=week)


# -- check_can_borrow: a copy on the shelf, no unpaid fine, room for one more loan ---------------


@pytest.mark.parametrize("active", [0, LIMIT - 1])
def test_a_member_under_the_loan_limit_may_borrow(active):
    standing = Standing(active_borrowings=active, has_unpaid_fine=False)
    assert rules.check_can_borrow(loan_facts(book(inventory=1), standing), RULES) is None


@pytest.mark.parametrize("active", [LIMIT, LIMIT + 1])
def test_a_member_at_the_loan_limit_may_not(active):
    standing = Standing(active_borrowings=active, has_unpaid_fine=False)
    with pytest.raises(LoanLimitReachedError) as refused:
        rules.check_can_borrow(loan_facts(book(), standing), RULES)
    assert refused.value.message.startswith(f"You already have {LIMIT} active borrowings")


def test_the_loan_limit_comes_from_the_settings():
    five = RULES.model_copy(update={"MAX_ACTIVE_BORROWINGS": 5})
    rules.check_can_borrow(
        loan_facts(book(), Standing(active_borrowings=4, has_unpaid_fine=False)), five
    )
    with pytest.raises(LoanLimitReachedError, match="5 active borrowings"):
        rules.check_can_borrow(
            loan_facts(book(), Standing(active_borrowings=5, has_unpaid_fine=False)), five
        )


def test_the_last_copy_may_be_borrowed_and_none_after_it():
    rules.check_can_borrow(loan_facts(book(inventory=1), IN_GOOD_STANDING), RULES)
    with pytest.raises(BookUnavailableError):
        rules.check_can_borrow(loan_facts(book(inventory=0), IN_GOOD_STANDING), RULES)


def test_an_unpaid_fine_blocks_borrowing():
    with pytest.raises(UnpaidFinesError):
        rules.check_can_borrow(
            loan_facts(book(), Standing(active_borrowings=0, has_unpaid_fine=True)), RULES
        )


@pytest.mark.parametrize(
    ("inventory", "has_unpaid_fine", "active", "refusal"),
    [
        (0, True, LIMIT, BookUnavailableError),  # no copy: the member's record is not the point
        (1, True, LIMIT, UnpaidFinesError),  # the fine before the limit: pay it first
        (1, False, LIMIT, LoanLimitReachedError),
    ],
)
def test_the_first_refusal_is_the_one_given(inventory, has_unpaid_fine, active, refusal):
    standing = Standing(active_borrowings=active, has_unpaid_fine=has_unpaid_fine)
    with pytest.raises(refusal):
        rules.check_can_borrow(loan_facts(book(inventory=inventory), standing), RULES)


# -- the member's standing, as the repository reads it for check_can_borrow ----------------------


@pytest.mark.parametrize(
    ("payment_type", "status", "unpaid_fine"),
    [
        ("FINE", "PENDING", True),
        ("FINE", "EXPIRED", True),  # its session lapsed: still owed
        ("FINE", "PAID", False),
        ("PAYMENT", "PENDING", False),  # an unpaid loan fee is not a fine
        ("PAYMENT", "EXPIRED", False),
    ],
)
async def test_only_a_pending_or_expired_fine_counts_as_unpaid(
    factory, db, payment_type, status, unpaid_fine
):
    member = await factory.member()
    old = await factory.book(title="Old")
    returned = await factory.borrowing(member, old, borrowed=day(-20), returned=day(-10))
    await factory.payment(returned, type=payment_type, status=status)
    async with db.sessionmaker() as session:
        found = await BorrowingRepository(session).borrow_facts(old.id, member.id)
    assert found is not None
    assert found.standing == Standing(active_borrowings=0, has_unpaid_fine=unpaid_fine)


async def test_only_the_members_own_active_borrowings_count(factory, db):
    member = await factory.member()
    other = await factory.member()
    shelf = await factory.book(inventory=9)
    for _ in range(2):
        await factory.borrowing(member, shelf)
    await factory.borrowing(member, shelf, borrowed=day(-9), returned=day(-5))
    await factory.borrowing(other, shelf)
    fine = await factory.borrowing(other, shelf, borrowed=day(-9), returned=day(-1))
    await factory.payment(fine, type="FINE")  # another member's fine
    async with db.sessionmaker() as session:
        found = await BorrowingRepository(session).borrow_facts(shelf.id, member.id)
        missing = await BorrowingRepository(session).borrow_facts(shelf.id + 1, member.id)
    assert found is not None
    assert (found.book.id, found.standing) == (
        shelf.id,
        Standing(active_borrowings=2, has_unpaid_fine=False),
    )
    assert missing is None


# -- check_fee_unchanged: charged what was quoted -----------------------------------------------


@pytest.mark.parametrize("quoted", [Decimal("1.50"), Decimal("1.5")])
def test_the_quoted_fee_is_the_fee(quoted):
    assert rules.check_fee_unchanged(book(daily_fee="1.50"), quoted=quoted) is None


@pytest.mark.parametrize("quoted", [Decimal("1.49"), Decimal("1.51"), Decimal("3.00")])
def test_a_fee_changed_since_the_quote_is_refused(quoted):
    with pytest.raises(FeeChangedError):
        rules.check_fee_unchanged(book(daily_fee="1.50"), quoted=quoted)


# -- loan_fee: days times the daily fee, chargeable ---------------------------------------------


@pytest.mark.parametrize(
    ("fee", "days", "expected"),
    [
        ("1.50", 1, "1.50"),
        ("1.50", 4, "6.00"),
        ("1.50", MAX_DAYS, "90.00"),
        ("0.10", 4, "0.50"),  # 0.40: under Stripe's minimum
        ("0.10", 5, "0.50"),  # exactly the minimum
        ("0.10", 6, "0.60"),
        ("0.01", 60, "0.60"),
    ],
)
def test_the_loan_fee_is_days_times_the_daily_fee(fee, days, expected):
    amount = rules.loan_fee(book(daily_fee=fee), start=TODAY, end=day(days))
    assert amount == Decimal(expected)
    assert amount.as_tuple().exponent == -2  # cents, as stored and sent to Stripe


def test_the_loan_fee_counts_calendar_days_not_hours():
    """Dates, not instants: 7 to 9 March is two days whatever the clocks do on the 8th."""
    assert rules.loan_fee(book(), start=date(2026, 3, 7), end=date(2026, 3, 9)) == Decimal("3.00")


# -- check_can_return, return_date --------------------------------------------------------------


def test_an_active_borrowing_may_be_returned_once():
    assert rules.check_can_return(loan()) is None
    with pytest.raises(AlreadyReturnedError):
        rules.check_can_return(loan(returned=day(2)))


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (TODAY, TODAY),  # the day it was borrowed
        (day(9), day(9)),  # late: still today
        (day(-1), TODAY),  # the clock (or the time zone) moved back: never before the loan
    ],
)
def test_the_return_date_is_today_but_never_before_the_borrow_date(today, expected):
    assert rules.return_date(loan(), today=today) == expected


# -- fine: days late times the daily fee times FINE_MULTIPLIER, chargeable ------------------------


@pytest.mark.parametrize("today", [day(1), day(3), day(4)])
def test_no_fine_up_to_and_on_the_due_date(today):
    assert rules.fine(loan(due=day(4)), book(), today=today, settings=RULES) is None


@pytest.mark.parametrize(
    ("fee", "multiplier", "late_days", "expected"),
    [
        ("1.50", "2", 1, "3.00"),  # the day after the due date is one day late
        ("1.50", "2", 4, "12.00"),
        ("1.50", "3", 4, "18.00"),  # the multiplier is the setting's
        ("1.15", "1.5", 1, "1.73"),  # 1.725: half-up (half-even would give 1.72)
        ("0.35", "1.5", 1, "0.53"),  # 0.525: half-up (half-even would give 0.52)
        ("0.10", "2", 1, "0.50"),  # 0.20: under Stripe's minimum
        ("0.10", "2", 3, "0.60"),
    ],
)
def test_the_fine_for_each_day_late(fee, multiplier, late_days, expected):
    settings = RULES.model_copy(update={"FINE_MULTIPLIER": Decimal(multiplier)})
    due = day(4)
    amount = rules.fine(
        loan(due=due), book(daily_fee=fee), today=due + timedelta(days=late_days), settings=settings
    )
    assert amount == Decimal(expected)


# -- money: cents, rounded half-up, at least Stripe's $0.50 -------------------------------------


def test_money_rounds_half_up_to_cents():
    assert to_cents(Decimal("0.125")) == Decimal("0.13")  # banker's rounding would give 0.12
    assert to_cents(Decimal("2.345")) == Decimal("2.35")
    assert to_cents(Decimal("2.3449")) == Decimal("2.34")
    assert as_integer_cents(Decimal("6")) == 600
    assert as_integer_cents(Decimal("19.995")) == 2000
    assert chargeable(Decimal("0.10")) == Decimal("0.50")
    assert chargeable(Decimal("0.50")) == Decimal("0.50")
    assert chargeable(Decimal("0.505")) == Decimal("0.51")


@pytest.mark.parametrize(
    ("amount", "charged"),
    [
        ("0", "0.50"),
        ("0.01", "0.50"),
        ("0.494", "0.50"),  # 0.49, lifted
        ("0.495", "0.50"),  # rounds up to the minimum itself
        ("0.4999", "0.50"),
        ("0.50", "0.50"),
        ("0.501", "0.50"),
        ("0.505", "0.51"),
        ("0.51", "0.51"),
        ("2.675", "2.68"),  # half-up, not the float 2.67499…
        ("1000", "1000.00"),
    ],
)
def test_chargeable_rounds_half_up_then_lifts_to_the_minimum(amount, charged):
    result = chargeable(Decimal(amount))
    assert result == Decimal(charged)
    assert str(result) == charged
