"""Each rule that a query also needs has a Python form and a SQL form (its domain's rules.py):
rows on the rule's edges are made in the database, and the rows the SQL form selects must
be exactly those the Python form holds for."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, select, update

from library_service.borrowings import rules as loan_rules
from library_service.core import clock
from library_service.core.db import Database
from library_service.holds import rules as hold_rules
from library_service.models import Borrowing, Hold, Payment
from library_service.payments import rules as payment_rules
from tests.factories import NOW, TODAY, day


async def _agree(
    db: Database,
    model: Any,
    ids: Sequence[int],
    clause: ColumnElement[bool],
    holds: Callable[[Any], bool],
) -> set[int]:
    """The ids the SQL form selects, after checking the Python form holds for the same."""
    async with db.sessionmaker() as session:
        rows = (await session.scalars(select(model).where(model.id.in_(ids)))).all()
        by_sql = set(await session.scalars(select(model.id).where(model.id.in_(ids), clause)))
    by_python = {row.id for row in rows if holds(row)}
    assert by_sql == by_python
    return by_sql


async def test_overdue_and_due_by_agree_on_the_days_around_today(db, factory):
    member, book = await factory.member(), await factory.book()
    loans = {
        name: await factory.borrowing(member, book, borrowed=day(-30), due=due, returned=back)
        for name, due, back in [
            ("due yesterday", day(-1), None),
            ("due today", day(0), None),
            ("due tomorrow", day(1), None),
            ("due a week ago, returned", day(-7), day(-2)),
            ("due yesterday, returned today", day(-1), day(0)),
        ]
    }
    ids = [loan.id for loan in loans.values()]

    overdue = await _agree(
        db,
        Borrowing,
        ids,
        loan_rules.overdue_clause(today=TODAY),
        lambda loan: loan_rules.is_overdue(loan, today=TODAY),
    )
    assert overdue == {loans["due yesterday"].id}  # due today is not late yet

    due_today = await _agree(
        db,
        Borrowing,
        ids,
        loan_rules.due_on_clause(day=TODAY),
        lambda loan: loan_rules.is_due_on(loan, day=TODAY),
    )
    assert due_today == {loans["due today"].id}

    on_loan = await _agree(db, Borrowing, ids, loan_rules.on_loan_clause(), loan_rules.can_return)
    assert on_loan == {loans[n].id for n in ("due yesterday", "due today", "due tomorrow")}

    # The morning report names every loan still out and due tomorrow or earlier.
    reported = await _agree(
        db,
        Borrowing,
        ids,
        loan_rules.due_by_clause(day=day(1)),
        lambda loan: loan_rules.is_due_by(loan, day=day(1)),
    )
    assert reported == {loans[n].id for n in ("due yesterday", "due today", "due tomorrow")}


def test_days_late_counts_only_the_days_past_the_due_day(factory):
    class Loan:
        def __init__(self, due: Any, returned: Any = None) -> None:
            self.expected_return_date, self.actual_return_date = due, returned

    assert loan_rules.days_late(Loan(day(-3)), today=TODAY) == 3
    assert loan_rules.days_late(Loan(day(0)), today=TODAY) == 0
    assert loan_rules.days_late(Loan(day(2)), today=TODAY) == 0
    assert loan_rules.days_late(Loan(day(-3), returned=day(-1)), today=TODAY) == 0


async def test_grace_days_delay_the_fine_not_the_overdue_state(factory, settings):
    """Overdue is the loan's state from the first day late; FINE_GRACE_DAYS only decides
    whether its return costs a fine."""
    member, book = await factory.member(), await factory.book()
    loan = await factory.borrowing(member, book, borrowed=day(-30), due=day(-1))
    graceful = settings.model_copy(update={"FINE_GRACE_DAYS": 2})
    assert loan_rules.is_overdue(loan, today=TODAY)
    assert loan_rules.fine(loan, book, today=TODAY, settings=graceful) is None
    assert loan_rules.fine(loan, book, today=day(1), settings=graceful) is None  # 2 days late
    assert loan_rules.fine(loan, book, today=day(2), settings=graceful) is not None


async def test_unpaid_fine_agrees_on_every_type_and_status(db, factory):
    member, book = await factory.member(), await factory.book()
    loan = await factory.borrowing(member, book)
    payments = {
        (kind, status): await factory.payment(loan, type=kind, status=status)
        for kind in ("PAYMENT", "FINE")
        for status in ("PENDING", "PAID", "EXPIRED", "WAIVED")
    }
    ids = [payment.id for payment in payments.values()]
    unpaid_fines = await _agree(
        db, Payment, ids, payment_rules.unpaid_fine_clause(), payment_rules.is_unpaid_fine
    )
    assert unpaid_fines == {payments["FINE", "PENDING"].id, payments["FINE", "EXPIRED"].id}
    unpaid = await _agree(db, Payment, ids, payment_rules.unpaid_clause(), payment_rules.is_unpaid)
    assert unpaid == {
        payments[kind, status].id
        for kind in ("PAYMENT", "FINE")
        for status in ("PENDING", "EXPIRED")
    }


async def test_can_renew_agrees_on_sessions_live_lapsed_and_missing(db, factory):
    """Renewable: EXPIRED; PENDING without a session; PENDING whose session is past its
    expiry. Not: PAID; PENDING with a session that can still be paid."""
    member, book = await factory.member(), await factory.book()
    loan = await factory.borrowing(member, book)
    cases = {
        "expired": ("EXPIRED", "cs_expired", NOW - timedelta(hours=1)),
        "paid": ("PAID", "cs_paid", NOW - timedelta(hours=1)),
        "pending, no session": ("PENDING", None, None),
        "pending, session lapsed": ("PENDING", "cs_lapsed", NOW - timedelta(seconds=1)),
        "pending, session lapses now": ("PENDING", "cs_now", NOW),
        "pending, session live": ("PENDING", "cs_live", NOW + timedelta(hours=23)),
    }
    payments = {}
    for name, (status, session_id, expires) in cases.items():
        payment = await factory.payment(loan, status=status)
        async with db.sessionmaker() as session, session.begin():
            await session.execute(
                update(Payment)
                .where(Payment.id == payment.id)
                .values(session_id=session_id, session_expires_at=expires)
            )
        payments[name] = payment.id

    renewable = await _agree(
        db,
        Payment,
        list(payments.values()),
        payment_rules.renewable_clause(now=NOW),
        lambda payment: payment_rules.can_renew(payment, now=NOW),
    )
    assert renewable == {
        payments[name]
        for name in (
            "expired",
            "pending, no session",
            "pending, session lapsed",
            "pending, session lapses now",
        )
    }


async def test_uncollected_agrees_on_the_last_pickup_day(db, factory):
    member, book = await factory.member(), await factory.book()
    holds = {
        "ready until yesterday": await factory.hold(
            member, book, status="READY", ready_until=day(-1)
        ),
        "ready until today": await factory.hold(
            member, await factory.book(), status="READY", ready_until=day(0)
        ),
        "waiting": await factory.hold(member, await factory.book()),
    }
    with clock.frozen(NOW):
        uncollected = await _agree(
            db,
            Hold,
            [hold.id for hold in holds.values()],
            hold_rules.uncollected_clause(today=TODAY),
            lambda hold: hold_rules.is_uncollected(hold, today=TODAY),
        )
    # The last pickup day is still a day to collect on.
    assert uncollected == {holds["ready until yesterday"].id}
