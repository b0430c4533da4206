"""The payment rules, each once: in Python for a payment at hand, and as the SQL condition
a query filters by (a test shows the two agree on the edges)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import ColumnElement, and_, literal, or_, select

from library_service.core.audit import AuditAction
from library_service.models import (
    AuditEntry,
    Payment,
    PaymentMethod,
    PaymentStatus,
    PaymentType,
    table_of,
)
from library_service.payments.errors import (
    InvalidWaiverReasonError,
    PaymentAlreadyPaidError,
    PaymentWaivedError,
)

# Owed: neither PAID nor WAIVED.
UNPAID_STATUSES = (PaymentStatus.PENDING.value, PaymentStatus.EXPIRED.value)
# The statuses as SQL takes them: against the table's column, so that a statement built on
# the tables stays plain Core (core/db.py), and as one parameter each, which SQLAlchemy
# renders once, where an IN of a Python list is rendered again on every run.
_status = table_of(Payment).c.status
_UNPAID = [literal(status) for status in UNPAID_STATUSES]
MAX_WAIVER_REASON = 500


class PaymentFacts(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def session_id(self) -> str | None: ...
    @property
    def session_expires_at(self) -> datetime | None: ...


def is_unpaid_fine(payment: PaymentFacts) -> bool:
    """A FINE not yet paid (PENDING or EXPIRED): its member may not borrow, queue or extend.
    An unpaid loan fee blocks nothing, nor does a fine paid or waived."""
    return payment.type == PaymentType.FINE.value and payment.status in UNPAID_STATUSES


def unpaid_fine_clause() -> ColumnElement[bool]:
    return and_(table_of(Payment).c.type == PaymentType.FINE.value, _status.in_(_UNPAID))


def can_renew(payment: PaymentFacts, *, now: datetime) -> bool:
    """A payment gets a new Checkout Session when it has none that can still be paid: it is
    EXPIRED, or PENDING without a session (Stripe was down) or past its session's expiry.

    The service also renews a PENDING payment whose session Stripe reports expired before
    its time (asked at the moment of renewing); nothing local can tell that in advance."""
    if payment.status == PaymentStatus.EXPIRED.value:
        return True
    if payment.status != PaymentStatus.PENDING.value:
        return False
    expires = payment.session_expires_at
    return payment.session_id is None or (expires is not None and expires <= now)


def renewable_clause(*, now: datetime) -> ColumnElement[bool]:
    return or_(
        Payment.status == PaymentStatus.EXPIRED.value,
        and_(
            Payment.status == PaymentStatus.PENDING.value,
            or_(Payment.session_id.is_(None), Payment.session_expires_at <= now),
        ),
    )


def is_unpaid(payment: PaymentFacts) -> bool:
    """Still owed (PENDING or EXPIRED): the desk may take it in cash or waive it."""
    return payment.status in UNPAID_STATUSES


def unpaid_clause() -> ColumnElement[bool]:
    return _status.in_(_UNPAID)


def collected_clause(
    method: PaymentMethod, *, since: datetime | None, before: datetime | None
) -> ColumnElement[bool]:
    """PAID by `method` (card or cash) from `since` to `before` (half-open; None: open)."""
    conditions = [Payment.status == PaymentStatus.PAID.value, Payment.method == method.value]
    if since is not None:
        conditions.append(Payment.paid_at >= since)
    if before is not None:
        conditions.append(Payment.paid_at < before)
    return and_(*conditions)


def waived_clause(*, since: datetime | None, before: datetime | None) -> ColumnElement[bool]:
    """WAIVED from `since` to `before`: a waiver's time is its row in the audit log (nothing
    was paid, so the payment has no `paid_at`)."""
    waivers = select(AuditEntry.target_id).where(
        AuditEntry.action == AuditAction.PAYMENT_WAIVE.value
    )
    if since is not None:
        waivers = waivers.where(AuditEntry.created_at >= since)
    if before is not None:
        waivers = waivers.where(AuditEntry.created_at < before)
    return and_(Payment.status == PaymentStatus.WAIVED.value, Payment.id.in_(waivers))


def check_still_owed(payment: PaymentFacts) -> None:
    """Cash, waivers and renewals apply only to what is still owed: PAID and WAIVED are
    final."""
    if payment.status == PaymentStatus.PAID.value:
        raise PaymentAlreadyPaidError
    if payment.status == PaymentStatus.WAIVED.value:
        raise PaymentWaivedError


def waiver_reason(reason: str | None) -> str:
    """The reason a waiver is recorded with (1 to 500 characters, spaces trimmed)."""
    text = (reason or "").strip()
    if not 1 <= len(text) <= MAX_WAIVER_REASON:
        raise InvalidWaiverReasonError
    return text
