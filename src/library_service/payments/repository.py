from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, Label, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.core.db import AnyRow
from library_service.core.pagination import PageParams, fetch_page
from library_service.models import (
    Book,
    Borrowing,
    Payment,
    PaymentMethod,
    PaymentStatus,
    StripeEvent,
    User,
    table_of,
)
from library_service.payments import rules
from library_service.payments.schemas import PaymentFilters
from library_service.payments.stripe_client import CheckoutSession

PENDING = PaymentStatus.PENDING.value


@dataclass(frozen=True, slots=True)
class PaymentSummary:
    """A payment with its member and book, as staff messages and Stripe's page name them."""

    id: int
    type: str
    money_to_pay: Decimal
    borrowing_id: int
    user_id: int
    email: str
    title: str
    author: str
    paid_at: datetime | None
    book_id: int
    method: str | None


@dataclass(frozen=True, slots=True)
class OpenSession:
    payment_id: int
    session_id: str


# On the tables: the statements that return a summary load no objects (core/db.py).
_p, _u, _b, _l = (table_of(model).c for model in (Payment, User, Book, Borrowing))
_SUMMARY_COLUMNS = (
    _p.id,
    _p.type,
    _p.money_to_pay,
    _p.borrowing_id,
    _u.id.label("user_id"),
    _u.email,
    _b.title,
    _b.author,
    _p.paid_at,
    _l.book_id,
    _p.method,
)
_SUMMARY_JOIN = (
    _l.id == _p.borrowing_id,
    _u.id == _l.user_id,
    _b.id == _l.book_id,
)

# Built once: every borrowing reserves an id, every payment is confirmed (see core/db.py).
_NEXT_ID = select(func.nextval(func.pg_get_serial_sequence("payments", "id")).label("id"))
_events = table_of(StripeEvent)
_RECORD_EVENT = (
    pg_insert(_events)
    .values(id=bindparam("event_id"), type=bindparam("event_type"))
    .on_conflict_do_nothing(index_elements=[_events.c.id])
    .returning(_events.c.id)
)
_MARK_PAID = (
    update(table_of(Payment))
    .where(_p.session_id == bindparam("paid_session_id"), rules.unpaid_clause(), *_SUMMARY_JOIN)
    .values(status=PaymentStatus.PAID.value, method=PaymentMethod.CARD.value, paid_at=func.now())
    .returning(*_SUMMARY_COLUMNS)
)
# A payment event, recorded and applied in one statement: the payment is marked only if the
# event was new (its row written by the WITH), so an event seen before changes nothing.
_new_event = _RECORD_EVENT.cte("new_event")
_MARK_PAID_BY_NEW_EVENT = _MARK_PAID.add_cte(_new_event).where(select(_new_event.c.id).exists())
_BY_SESSION_ID = select(Payment).where(Payment.session_id == bindparam("session_id"))


def count_and_sum(
    label: str, *conditions: ColumnElement[bool]
) -> tuple[Label[int], Label[Decimal]]:
    """How many payments match, and their amount: two columns `label` and `label_amount`."""
    count = select(func.count()).select_from(Payment).where(*conditions).scalar_subquery()
    amount = (
        select(func.coalesce(func.sum(Payment.money_to_pay), 0))
        .where(*conditions)
        .scalar_subquery()
    )
    return count.label(label), amount.label(f"{label}_amount")


class PaymentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def totals(self, *, since: datetime | None, before: datetime | None) -> AnyRow:
        """Collected by card, collected in cash and waived from `since` to `before` (one
        statement): columns card, cash, waived and each one's `_amount`."""
        window = {"since": since, "before": before}
        statement = select(
            *count_and_sum("card", rules.collected_clause(PaymentMethod.CARD, **window)),
            *count_and_sum("cash", rules.collected_clause(PaymentMethod.CASH, **window)),
            *count_and_sum("waived", rules.waived_clause(**window)),
        )
        return (await self.session.execute(statement)).one()

    async def reserve_id(self) -> int:
        """A payment id taken before the row exists: Stripe's metadata needs it first."""
        payment_id: int = (await self.session.execute(_NEXT_ID)).scalar_one()
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
        self, filters: PaymentFilters, page: PageParams, *, estimate_ttl: float = 0
    ) -> tuple[Sequence[Payment], int]:
        statement = select(Payment)
        if filters.user_id is not None:
            statement = statement.join(Borrowing).where(Borrowing.user_id == filters.user_id)
        if filters.status is not None:
            statement = statement.where(Payment.status == filters.status)
        if filters.type is not None:
            statement = statement.where(Payment.type == filters.type)
        rows, total = await fetch_page(
            self.session,
            statement.order_by(Payment.id.desc()),
            page,
            filters=filters,
            estimate_ttl=estimate_ttl,
        )
        return [row.Payment for row in rows], total

    async def mark_paid(self, session_id: str) -> PaymentSummary | None:
        """PAID by card once: the payment if this call changed it; None if it was already
        settled (paid, in cash too, or waived) or is unknown."""
        parameters = {"paid_session_id": session_id}
        row = (await self.session.execute(_MARK_PAID, parameters)).mappings().first()
        return PaymentSummary(**row) if row else None

    async def settle_at_desk(
        self, payment_id: int, *, session_id: str | None, method: PaymentMethod, staff_id: int
    ) -> PaymentSummary | None:
        """PAID in cash, or WAIVED, once: the payment if this call settled it; None if it
        was settled meanwhile or got another session than `session_id` (the one expired)."""
        waived = method == PaymentMethod.WAIVED
        statement = (
            update(Payment)
            .where(
                Payment.id == payment_id,
                rules.unpaid_clause(),
                Payment.session_id.is_not_distinct_from(session_id),
                *_SUMMARY_JOIN,
            )
            .values(
                status=(PaymentStatus.WAIVED if waived else PaymentStatus.PAID).value,
                method=method.value,
                recorded_by=staff_id,
                paid_at=None if waived else func.now(),
            )
            .returning(*_SUMMARY_COLUMNS)
            .execution_options(synchronize_session=False)
        )
        row = (await self.session.execute(statement)).mappings().first()
        return PaymentSummary(**row) if row else None

    async def mark_expired(self, session_id: str) -> int | None:
        statement = (
            update(Payment)
            .where(Payment.session_id == session_id, Payment.status == PENDING)
            .values(status=PaymentStatus.EXPIRED.value)
            .returning(Payment.id)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def attach_session(
        self, payment_id: int, checkout: CheckoutSession, *, replacing: str | None
    ) -> bool:
        """Point an unpaid payment at a new Checkout Session, if its session is still
        `replacing` (None: it had none); False if somebody changed it meanwhile."""
        current = (
            Payment.session_id.is_(None) if replacing is None else Payment.session_id == replacing
        )
        statement = (
            update(Payment)
            .where(Payment.id == payment_id, current, rules.unpaid_clause())
            .values(
                session_id=checkout.id,
                session_url=checkout.url,
                session_expires_at=checkout.expires_at,
                status=PENDING,
            )
            .returning(Payment.id)
        )
        return (await self.session.execute(statement)).first() is not None

    async def summary(self, payment_id: int) -> PaymentSummary:
        statement = select(*_SUMMARY_COLUMNS).where(Payment.id == payment_id, *_SUMMARY_JOIN)
        return PaymentSummary(**(await self.session.execute(statement)).mappings().one())

    async def open_sessions(self, *, limit: int) -> Sequence[OpenSession]:
        """Unpaid sessions, soonest to expire first (the expiry poll's work list)."""
        statement = (
            select(Payment.id, Payment.session_id)
            .where(Payment.status == PENDING, Payment.session_id.is_not(None))
            .order_by(Payment.session_expires_at, Payment.id)
            .limit(limit)
        )
        rows = (await self.session.execute(statement)).all()
        return [OpenSession(payment_id=row.id, session_id=row.session_id) for row in rows]

    async def pending_without_session(self, *, limit: int) -> Sequence[int]:
        statement = (
            select(Payment.id)
            .where(Payment.status == PENDING, Payment.session_id.is_(None))
            .order_by(Payment.id)
            .limit(limit)
        )
        return (await self.session.scalars(statement)).all()

    async def mark_paid_by_new_event(
        self, session_id: str, *, event_id: str, event_type: str
    ) -> PaymentSummary | None:
        """`record_event` and `mark_paid` in one round trip: the payment if the event was
        new and this call marked it PAID; None if the event was seen before, or the payment
        was already settled or is unknown (the event is recorded all the same)."""
        parameters = {"paid_session_id": session_id, "event_id": event_id, "event_type": event_type}
        row = (await self.session.execute(_MARK_PAID_BY_NEW_EVENT, parameters)).mappings().first()
        return PaymentSummary(**row) if row else None

    async def record_event(self, event_id: str, event_type: str) -> bool:
        """Remember a webhook event; False if it was seen before."""
        parameters = {"event_id": event_id, "event_type": event_type}
        return (await self.session.execute(_RECORD_EVENT, parameters)).first() is not None
