"""What the desk reads across the circulation's tables: the start page's figures, a member's
standing and a book's copies and queue. Each rule comes from its domain's rules.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, Label, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.borrowings import rules as loan_rules
from library_service.core.money import to_cents
from library_service.models import (
    Book,
    Borrowing,
    Hold,
    HoldStatus,
    Notification,
    NotificationStatus,
    Payment,
    PaymentMethod,
    PaymentType,
    User,
)
from library_service.payments import rules as payment_rules
from library_service.payments.repository import count_and_sum


@dataclass(frozen=True, slots=True)
class DeskFigures:
    loans_out: int
    due_today: int
    overdue_loans: int
    ready_holds: int
    unpaid_fees: int
    unpaid_fees_amount: Decimal
    unpaid_fines: int
    unpaid_fines_amount: Decimal
    cash_today: int
    cash_today_amount: Decimal
    waived_today: int  # reported apart: waived, not collected
    waived_today_amount: Decimal
    failed_messages: int


@dataclass(frozen=True, slots=True)
class Owed:
    """What a member owes: borrowing fees and fines apart (unpaid: PENDING or EXPIRED)."""

    fees: Decimal
    fee_count: int
    fines: Decimal
    fine_count: int

    @property
    def total(self) -> Decimal:
        return self.fees + self.fines


@dataclass(frozen=True, slots=True)
class HoldLine:
    id: int
    status: str
    book_id: int
    title: str
    user_id: int
    member: str
    ready_until: date | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LoanLine:
    id: int
    user_id: int
    member: str
    borrow_date: date
    expected_return_date: date
    actual_return_date: date | None


def _member_name() -> Label[str]:
    """ "First Last <email>", or the email alone."""
    name = func.nullif(func.concat_ws(" ", User.first_name, User.last_name), "")
    return func.coalesce(name + " <" + User.email + ">", User.email).label("member")


def _loans(label: str, condition: ColumnElement[bool]) -> Label[int]:
    return (
        select(func.count()).select_from(Borrowing).where(condition).scalar_subquery().label(label)
    )


class DeskRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def figures(self, *, today: date, day_began: datetime) -> DeskFigures:
        """One statement: what a librarian wants first."""
        unpaid = payment_rules.unpaid_clause()
        statement = select(
            _loans("loans_out", loan_rules.on_loan_clause()),
            _loans("due_today", loan_rules.due_on_clause(day=today)),
            _loans("overdue_loans", loan_rules.overdue_clause(today=today)),
            select(func.count())
            .where(Hold.status == HoldStatus.READY.value)
            .scalar_subquery()
            .label("ready_holds"),
            *count_and_sum("unpaid_fees", unpaid, Payment.type == PaymentType.PAYMENT.value),
            *count_and_sum("unpaid_fines", unpaid, Payment.type == PaymentType.FINE.value),
            *count_and_sum(
                "cash_today",
                payment_rules.collected_clause(PaymentMethod.CASH, since=day_began, before=None),
            ),
            *count_and_sum(
                "waived_today", payment_rules.waived_clause(since=day_began, before=None)
            ),
            select(func.count())
            .where(Notification.status == NotificationStatus.FAILED.value)
            .scalar_subquery()
            .label("failed_messages"),
        )
        row = (await self.session.execute(statement)).one()
        return DeskFigures(
            loans_out=row.loans_out,
            due_today=row.due_today,
            overdue_loans=row.overdue_loans,
            ready_holds=row.ready_holds,
            unpaid_fees=row.unpaid_fees,
            unpaid_fees_amount=to_cents(Decimal(row.unpaid_fees_amount)),
            unpaid_fines=row.unpaid_fines,
            unpaid_fines_amount=to_cents(Decimal(row.unpaid_fines_amount)),
            cash_today=row.cash_today,
            cash_today_amount=to_cents(Decimal(row.cash_today_amount)),
            waived_today=row.waived_today,
            waived_today_amount=to_cents(Decimal(row.waived_today_amount)),
            failed_messages=row.failed_messages,
        )

    async def owed(self, user_id: int) -> Owed:
        mine = and_(
            payment_rules.unpaid_clause(),
            Payment.borrowing_id.in_(select(Borrowing.id).where(Borrowing.user_id == user_id)),
        )
        statement = select(
            *count_and_sum("fees", mine, Payment.type == PaymentType.PAYMENT.value),
            *count_and_sum("fines", mine, Payment.type == PaymentType.FINE.value),
        )
        row = (await self.session.execute(statement)).one()
        return Owed(
            fee_count=row.fees,
            fees=to_cents(Decimal(row.fees_amount)),
            fine_count=row.fines,
            fines=to_cents(Decimal(row.fines_amount)),
        )

    async def holds(
        self, *, user_id: int | None = None, book_id: int | None = None, open_only: bool = False
    ) -> Sequence[HoldLine]:
        """Holds in queue order (oldest first): a member's or a book's."""
        statement = (
            select(
                Hold.id,
                Hold.status,
                Hold.book_id,
                Book.title,
                Hold.user_id,
                _member_name(),
                Hold.ready_until,
                Hold.created_at,
            )
            .join(Book, Book.id == Hold.book_id)
            .join(User, User.id == Hold.user_id)
            .order_by(Hold.id)
            .limit(200)
        )
        if user_id is not None:
            statement = statement.where(Hold.user_id == user_id)
        if book_id is not None:
            statement = statement.where(Hold.book_id == book_id)
        if open_only:
            statement = statement.where(
                Hold.status.in_([HoldStatus.WAITING.value, HoldStatus.READY.value])
            )
        return [HoldLine(**row._mapping) for row in await self.session.execute(statement)]

    async def loans_of_book(self, book_id: int) -> Sequence[LoanLine]:
        """The book's copies out, soonest due first."""
        statement = (
            select(
                Borrowing.id,
                Borrowing.user_id,
                _member_name(),
                Borrowing.borrow_date,
                Borrowing.expected_return_date,
                Borrowing.actual_return_date,
            )
            .join(User, User.id == Borrowing.user_id)
            .where(Borrowing.book_id == book_id, loan_rules.on_loan_clause())
            .order_by(Borrowing.expected_return_date, Borrowing.id)
        )
        return [LoanLine(**row._mapping) for row in await self.session.execute(statement)]
