from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.core.db import AnyRow
from library_service.core.pagination import PageParams
from library_service.models import Book, Borrowing, Payment, PaymentStatus, StripeEvent, User

PENDING = PaymentStatus.PENDING.value


@dataclass(frozen=True, slots=True)
class PaymentFilters:
    user_id: int | None = None  # the member's own id, or a staff filter
    status: str | None = None
    type: str | None = None


# The next payment id, for a row written after Stripe is asked (its metadata names the id).
NEXT_PAYMENT_ID = func.nextval(func.pg_get_serial_sequence("payments", "id"))

# A payment with its member and book, as staff messages and Stripe's page name them.
_DESCRIBE_COLUMNS = (
    Payment.id,
    Payment.type,
    Payment.money_to_pay,
    Payment.borrowing_id,
    User.email,
    Book.title,
    Book.author,
)
_DESCRIBE_JOIN = (
    Borrowing.id == Payment.borrowing_id,
    User.id == Borrowing.user_id,
    Book.id == Borrowing.book_id,
)


# The webhook's and the success redirect's statements, built once (see core/db.py).
_BY_SESSION_ID = select(Payment).where(Payment.session_id == bindparam("session_id"))
_MARK_PAID = (
    update(Payment)
    .where(
        Payment.session_id == bindparam("checkout_session_id"),
        Payment.status != PaymentStatus.PAID.value,
        *_DESCRIBE_JOIN,
    )
    .values(status=PaymentStatus.PAID.value, paid_at=func.now())
    .returning(*_DESCRIBE_COLUMNS)
    .execution_options(synchronize_session=False)
)
_RECORD_EVENT = (
    pg_insert(StripeEvent)
    .values(id=bindparam("event_id"), type=bindparam("event_type"))
    .on_conflict_do_nothing(index_elements=[StripeEvent.id])
    .returning(StripeEvent.id)
)


class PaymentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def reserve_id(self) -> int:
        """A payment id taken before the row exists: Stripe's metadata needs it first."""
        payment_id: int = (await self.session.execute(select(NEXT_PAYMENT_ID))).scalar_one()
        return payment_id

    async def get(self, payment_id: int, *, user_id: int | None = None) -> Payment | None:
        """A payment; with `user_id`, only if it belongs to that user's borrowing."""
        statement = select(Payment).where(Payment.id == payment_id)
        if user_id is not None:
            statement = statement.join(Borrowing).where(Borrowing.user_id == user_id)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def get_by_session_id(self, session_id: str) -> Payment | None:
        parameters = {"session_id": session_id}
        return (await self.session.execute(_BY_SESSION_ID, parameters)).scalar_one_or_none()

    async def list(
        self, filters: PaymentFilters, page: PageParams
    ) -> tuple[Sequence[Payment], int]:
        statement = select(Payment, func.count().over().label("total"))
        if filters.user_id is not None:
            statement = statement.join(Borrowing).where(Borrowing.user_id == filters.user_id)
        if filters.status is not None:
            statement = statement.where(Payment.status == filters.status)
        if filters.type is not None:
            statement = statement.where(Payment.type == filters.type)
        statement = statement.order_by(Payment.id.desc()).limit(page.limit).offset(page.offset)
        rows = (await self.session.execute(statement)).all()
        if rows:
            return [row[0] for row in rows], rows[0].total
        if page.offset == 0:
            return [], 0
        count_statement = select(func.count()).select_from(
            statement.order_by(None).limit(None).offset(None).subquery()
        )
        return [], int(await self.session.scalar(count_statement) or 0)

    async def add(self, payment: Payment) -> Payment:
        self.session.add(payment)
        await self.session.flush()
        return payment

    async def mark_paid(self, session_id: str) -> AnyRow | None:
        """PAID once: if this call changed it, the payment as `describe` reads it; None if
        it was already paid or is unknown."""
        return (await self.session.execute(_MARK_PAID, {"checkout_session_id": session_id})).first()

    async def mark_expired(self, session_id: str) -> int | None:
        statement = (
            update(Payment)
            .where(Payment.session_id == session_id, Payment.status == PENDING)
            .values(status=PaymentStatus.EXPIRED.value)
            .returning(Payment.id)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def attach_session(
        self,
        payment_id: int,
        *,
        session_id: str,
        session_url: str | None,
        expires_at: datetime,
        expected_session_id: str | None,
    ) -> bool:
        """Point a payment at a new Checkout Session, if nobody changed it meanwhile."""
        condition = (
            Payment.session_id.is_(None)
            if expected_session_id is None
            else Payment.session_id == expected_session_id
        )
        statement = (
            update(Payment)
            .where(
                Payment.id == payment_id,
                condition,
                Payment.status != PaymentStatus.PAID.value,
            )
            .values(
                session_id=session_id,
                session_url=session_url,
                session_expires_at=expires_at,
                status=PENDING,
            )
            .returning(Payment.id)
        )
        return (await self.session.execute(statement)).first() is not None

    async def describe(self, payment_id: int) -> AnyRow:
        """The payment with its member and book: for staff messages and Stripe's page."""
        statement = select(*_DESCRIBE_COLUMNS).where(Payment.id == payment_id, *_DESCRIBE_JOIN)
        return (await self.session.execute(statement)).one()

    async def pending_with_session(self, *, limit: int) -> Sequence[AnyRow]:
        """Unpaid sessions, soonest to expire first (the expiry poll's work list)."""
        statement = (
            select(Payment.id, Payment.session_id)
            .where(Payment.status == PENDING, Payment.session_id.is_not(None))
            .order_by(Payment.session_expires_at, Payment.id)
            .limit(limit)
        )
        return (await self.session.execute(statement)).all()

    async def pending_without_session(self, *, limit: int) -> Sequence[int]:
        statement = (
            select(Payment.id)
            .where(Payment.status == PENDING, Payment.session_id.is_(None))
            .order_by(Payment.id)
            .limit(limit)
        )
        return (await self.session.scalars(statement)).all()

    async def record_event(self, event_id: str, event_type: str) -> bool:
        """Remember a webhook event; False if it was seen before."""
        parameters = {"event_id": event_id, "event_type": event_type}
        return (await self.session.execute(_RECORD_EVENT, parameters)).first() is not None
