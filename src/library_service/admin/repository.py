"""The start page's figures: one statement across the circulation's tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.borrowings import rules as loan_rules
from library_service.models import Borrowing, Notification, NotificationStatus, Payment
from library_service.payments import rules as payment_rules


@dataclass(frozen=True, slots=True)
class DeskFigures:
    loans_out: int
    overdue_loans: int
    unpaid_fines: int
    unpaid_fines_amount: Decimal
    failed_messages: int


class DeskRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def figures(self, *, today: date) -> DeskFigures:
        active = Borrowing.actual_return_date.is_(None)
        unpaid_fine = payment_rules.unpaid_fine_clause()
        statement = select(
            select(func.count()).where(active).scalar_subquery().label("loans_out"),
            select(func.count())
            .where(loan_rules.overdue_clause(today=today))
            .scalar_subquery()
            .label("overdue_loans"),
            select(func.count()).where(unpaid_fine).scalar_subquery().label("unpaid_fines"),
            select(func.coalesce(func.sum(Payment.money_to_pay), 0))
            .where(unpaid_fine)
            .scalar_subquery()
            .label("unpaid_fines_amount"),
            select(func.count())
            .where(Notification.status == NotificationStatus.FAILED.value)
            .scalar_subquery()
            .label("failed_messages"),
        )
        row = (await self.session.execute(statement)).one()
        return DeskFigures(
            loans_out=row.loans_out,
            overdue_loans=row.overdue_loans,
            unpaid_fines=row.unpaid_fines,
            unpaid_fines_amount=Decimal(row.unpaid_fines_amount),
            failed_messages=row.failed_messages,
        )
