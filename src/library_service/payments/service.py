from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

import stripe
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.core import clock
from library_service.core.audit import AuditAction, AuditTarget, AuditTrail, Target
from library_service.core.config import Settings
from library_service.core.db import UnitOfWork
from library_service.core.errors import found
from library_service.core.money import to_cents
from library_service.core.pagination import PageParams
from library_service.models import Payment, PaymentMethod, PaymentStatus, PaymentType
from library_service.notifications import notices
from library_service.notifications.service import (
    MemberNoticeService,
    NotificationService,
    Recipient,
)
from library_service.payments import messages, rules
from library_service.payments.checkout import Charge, CheckoutSaga
from library_service.payments.errors import (
    InvalidEventError,
    InvalidSignatureError,
    PaymentAlreadyPaidError,
    PaymentChangedError,
    PaymentNotCompletedError,
    PaymentNotExpiredError,
    PaymentNotFoundError,
    UnknownSessionError,
    WebhookNotConfiguredError,
)
from library_service.payments.repository import OpenSession, PaymentRepository, PaymentSummary
from library_service.payments.schemas import (
    CheckoutSessionEventData,
    CheckoutSessionObject,
    PaymentFilters,
    PaymentTotals,
    StripeEvent,
    Tally,
)
from library_service.users.schemas import AuthUser
from library_service.web import routing as strict_json

logger = logging.getLogger(__name__)

# How far a webhook's signature time may be from now, either way: Stripe's default (5 min).
WEBHOOK_TOLERANCE_SECONDS: int = stripe.Webhook.DEFAULT_TOLERANCE

PAID_EVENTS = {"checkout.session.completed", "checkout.session.async_payment_succeeded"}
EXPIRED_EVENT = "checkout.session.expired"
CHECKOUT_EVENTS = {*PAID_EVENTS, EXPIRED_EVENT}


def _checkout_session_of(event: StripeEvent) -> CheckoutSessionObject:
    try:
        return CheckoutSessionEventData.model_validate(event.data).object
    except ValidationError as exc:
        raise InvalidEventError from exc


class PaymentService:
    def __init__(self, uow: UnitOfWork, *, settings: Settings, checkout: CheckoutSaga) -> None:
        self.uow = uow
        self.settings = settings
        self.checkout = checkout
        self.stripe = checkout.stripe

    # -- reading ------------------------------------------------------------------------

    async def list_payments(
        self, user: AuthUser, filters: PaymentFilters, page: PageParams
    ) -> tuple[Sequence[Payment], int]:
        async with self.uow.read() as session:
            return await PaymentRepository(session).list(
                user.restrict(filters),
                page,
                estimate_ttl=self.settings.ESTIMATED_COUNT_CACHE_SECONDS,
            )

    async def get_payment(self, payment_id: int, user: AuthUser) -> Payment:
        async with self.uow.read() as session:
            payment = await PaymentRepository(session).get(payment_id, user_id=user.restricted_to)
        return found(payment, PaymentNotFoundError)

    async def totals(self, since: date | None, until: date | None) -> PaymentTotals:
        """Collected (by card, in cash) and waived over library days, both included: `until`
        is today unless given, `since` is `until` unless given."""
        until = until or clock.today(self.settings.timezone)
        since = since or until
        start, before = clock.library_days(since, until, self.settings.timezone)
        async with self.uow.read() as session:
            row = await PaymentRepository(session).totals(since=start, before=before)

        def tally(label: str) -> Tally:
            count, amount = getattr(row, label), getattr(row, f"{label}_amount")
            return Tally(count=count, amount=to_cents(Decimal(amount)))

        card, cash = tally("card"), tally("cash")
        collected = Tally(count=card.count + cash.count, amount=card.amount + cash.amount)
        return PaymentTotals(
            since=since,
            until=until,
            card=card,
            cash=cash,
            collected=collected,
            waived=tally("waived"),
        )

    async def summary(self, payment_id: int) -> PaymentSummary:
        """The payment with its member and book."""
        async with self.uow.read() as session:
            return await PaymentRepository(session).summary(payment_id)

    async def describe_cancel(self, session_id: str) -> Payment:
        async with self.uow.read() as session:
            payment = await PaymentRepository(session).get_by_session_id(session_id)
        return found(payment, UnknownSessionError)

    # -- Stripe's redirects and webhooks ------------------------------------------------

    async def confirm_paid(self, session_id: str) -> Payment:
        """The success redirect: ask Stripe, and mark PAID only if the session is paid."""
        payment = await self.describe_cancel(session_id)
        if payment.status == PaymentStatus.PAID:
            return payment
        checkout = await self.stripe.retrieve_checkout_session(session_id)
        if checkout is None:
            raise UnknownSessionError
        if not checkout.is_paid:
            raise PaymentNotCompletedError
        return await self._fulfil_and_reload(payment.id, session_id)

    async def handle_webhook(self, payload: bytes, signature: str | None) -> bool:
        """Apply a signed Stripe event once; True if it changed something."""
        event = self._verified_event(payload, signature)
        checkout = _checkout_session_of(event) if event.type in CHECKOUT_EVENTS else None
        async with self.uow.write() as session:
            payments = PaymentRepository(session)
            if (
                checkout is not None
                and event.type in PAID_EVENTS
                and checkout.payment_status == "paid"
            ):
                # The most frequent event: recorded and applied in one round trip.
                paid = await payments.mark_paid_by_new_event(
                    checkout.id, event_id=event.id, event_type=event.type
                )
                return paid is not None and await _tell_paid(session, paid)
            if not await payments.record_event(event.id, event.type):
                return False  # seen before: Stripe delivers at least once
            if checkout is not None and event.type == EXPIRED_EVENT:
                return await payments.mark_expired(checkout.id) is not None
        return False

    def _verified_event(self, payload: bytes, signature: str | None) -> StripeEvent:
        secret = self.settings.STRIPE_WEBHOOK_SECRET
        if not secret:
            raise WebhookNotConfiguredError
        try:
            text = payload.decode()
            stripe.WebhookSignature.verify_header(
                text, signature or "", secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
            )
        except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
            raise InvalidSignatureError from exc
        # The SDK refuses only signatures older than the tolerance; one dated further ahead
        # could be replayed for as long as it likes (the same real clock as the SDK's).
        if _signed_at(signature or "") > time.time() + WEBHOOK_TOLERANCE_SECONDS:
            raise InvalidSignatureError
        try:
            return StripeEvent.model_validate(strict_json.loads(payload))
        except (ValueError, ValidationError) as exc:  # JSONDecodeError is a ValueError
            raise InvalidEventError from exc

    async def _fulfil_and_reload(self, payment_id: int, session_id: str) -> Payment:
        async with self.uow.write() as session:
            await _fulfil(session, session_id)
            payment = await PaymentRepository(session).get(payment_id)
        assert payment is not None  # payments are never deleted
        return payment

    # -- the desk: cash and waivers -----------------------------------------------------

    async def take_cash(self, payment_id: int, staff: AuthUser) -> Payment:
        """Record an unpaid payment as PAID in cash, by `staff`."""
        return await self._settle_at_desk(payment_id, staff, PaymentMethod.CASH, reason=None)

    async def waive(self, payment_id: int, staff: AuthUser, reason: str | None) -> Payment:
        """Waive an unpaid payment, for a reason: nothing is owed on it any more."""
        text = rules.waiver_reason(reason)
        return await self._settle_at_desk(payment_id, staff, PaymentMethod.WAIVED, reason=text)

    async def send_payment_link(self, payment_id: int, staff: AuthUser) -> Payment:
        """The desk sends a member the checkout link of a payment still owed: it is e-mailed
        to them and shown in their app (a member notice), and the desk shows it to hand
        over. A payment without a session yet (Stripe was down) has no link to send."""
        payment = await self.get_payment(payment_id, staff)
        rules.check_still_owed(payment)
        if payment.session_url is None:
            return payment
        async with self.uow.write() as session:
            owed = await PaymentRepository(session).summary(payment_id)
            await MemberNoticeService(session).record_payment_link(
                Recipient(owed.user_id, owed.email),
                payment_id=payment_id,
                title=owed.title,
                amount=owed.money_to_pay,
                what=_what(owed),
                checkout_url=payment.session_url,
            )
        return payment

    async def _settle_at_desk(
        self, payment_id: int, staff: AuthUser, method: PaymentMethod, *, reason: str | None
    ) -> Payment:
        """Stripe's session is expired first (no lock held), so it can no longer be paid;
        had it been paid already, the payment is marked PAID by card and the desk refused.
        Then one conditional UPDATE settles it: whatever else confirms, renews or settles
        the payment at the same time, it is settled exactly once."""
        payment = await self.get_payment(payment_id, staff)
        rules.check_still_owed(payment)
        session_id = payment.session_id
        if session_id is not None:
            final = await self.stripe.expire_checkout_session(session_id)
            if final is not None and final.is_paid:
                await self._fulfil_and_reload(payment_id, session_id)
                raise PaymentAlreadyPaidError
        async with self.uow.write() as session:
            payments = PaymentRepository(session)
            settled = await payments.settle_at_desk(
                payment_id, session_id=session_id, method=method, staff_id=staff.id
            )
            if settled is None:
                current = await payments.get(payment_id)
                assert current is not None  # payments are never deleted
                rules.check_still_owed(current)  # settled meanwhile: say how
                raise PaymentChangedError  # a new checkout session meanwhile
            status = PaymentStatus.WAIVED if method == PaymentMethod.WAIVED else PaymentStatus.PAID
            await AuditTrail(session).record(
                staff.id,
                AuditAction.PAYMENT_WAIVE if reason is not None else AuditAction.PAYMENT_CASH,
                Target(AuditTarget.PAYMENT, payment_id, settled.user_id, settled.book_id),
                changes={
                    "status": [payment.status, status.value],
                    "method": [None, method.value],
                },
                reason=reason,
            )
            if method == PaymentMethod.CASH:
                text = messages.payment_received(settled)
                await NotificationService(session).record("payment_paid", text)
                await _record_receipt(session, settled, how="cash, at the desk")
            settled_payment = await payments.get(payment_id)
        assert settled_payment is not None
        return settled_payment

    # -- new sessions -------------------------------------------------------------------

    async def renew(self, payment_id: int, user: AuthUser) -> Payment:
        """Give an expired payment (or one still without a session) a new Checkout Session."""
        payment = await self.get_payment(payment_id, user)
        rules.check_still_owed(payment)  # nothing to renew on a paid or waived one
        old_session_id = payment.session_id
        if payment.status == PaymentStatus.PENDING and old_session_id is not None:
            # Stripe may have expired it before its webhook reached us: ask.
            current = await self.stripe.retrieve_checkout_session(old_session_id)
            if current is not None and current.is_paid:
                return await self._fulfil_and_reload(payment_id, old_session_id)
            if current is not None and current.status == "open":
                raise PaymentNotExpiredError

        charge = await self._charge_for(payment_id)
        async with self.checkout.reopen(payment_id, charge) as (session, opened):
            payments = PaymentRepository(session)
            assert opened.session is not None  # renewing refuses when Stripe is down
            if not await payments.attach_session(
                payment_id, opened.session, replacing=old_session_id
            ):
                raise PaymentChangedError  # renewed or paid concurrently
            renewed = await payments.get(payment_id)
            assert renewed is not None
            if user.is_staff:
                summary = await payments.summary(payment_id)
                await AuditTrail(session).record(
                    user.id,
                    AuditAction.PAYMENT_RENEW,
                    Target(AuditTarget.PAYMENT, payment_id, summary.user_id, summary.book_id),
                    changes={"status": [payment.status, renewed.status]},
                )
            return renewed

    async def attach_missing_session(self, payment_id: int) -> bool:
        """Worker job: give a PENDING payment without a session its first one.
        Raises PaymentProviderUnavailableError (the job retries)."""
        async with self.uow.read() as session:
            payment = await PaymentRepository(session).get(payment_id)
        if payment is None or payment.status != PaymentStatus.PENDING or payment.session_id:
            return False

        # Stable per payment row: concurrent runs of this job get one and the same session.
        key = f"payment-{payment_id}-{payment.created_at.timestamp():.0f}-attach"
        charge = await self._charge_for(payment_id)
        try:
            async with self.checkout.reopen(payment_id, charge, idempotency_key=key) as (
                session,
                opened,
            ):
                assert opened.session is not None
                payments = PaymentRepository(session)
                if await payments.attach_session(payment_id, opened.session, replacing=None):
                    return True
                current = await payments.get(payment_id)
                # The same idempotency key gave a concurrent run this very session: keep it.
                if current is not None and current.session_id == opened.session.id:
                    return False
                raise PaymentChangedError
        except PaymentChangedError:
            return False

    async def _charge_for(self, payment_id: int) -> Charge:
        async with self.uow.read() as session:
            summary = await PaymentRepository(session).summary(payment_id)
        return Charge(
            type=PaymentType(summary.type),
            title=summary.title,
            detail=f"by {summary.author}, borrowing #{summary.borrowing_id}",
            amount=summary.money_to_pay,
        )

    # -- the worker's polls -------------------------------------------------------------

    async def open_sessions(self, *, limit: int) -> Sequence[OpenSession]:
        """Unpaid sessions, soonest to expire first."""
        async with self.uow.read() as session:
            return await PaymentRepository(session).open_sessions(limit=limit)

    async def payments_without_session(self, *, limit: int) -> Sequence[int]:
        """Fines recorded while Stripe was down."""
        async with self.uow.read() as session:
            return await PaymentRepository(session).pending_without_session(limit=limit)

    async def check_session(self, payment_id: int, session_id: str) -> str | None:
        """Bring one PENDING payment in line with its session at Stripe (no lock held
        while asking): PAID if paid, EXPIRED if expired; None if still open."""
        checkout = await self.stripe.retrieve_checkout_session(session_id)
        if checkout is not None and checkout.is_paid:
            async with self.uow.write() as session:
                return "PAID" if await _fulfil(session, session_id) else None
        if checkout is not None and checkout.status == "expired":
            async with self.uow.write() as session:
                expired = await PaymentRepository(session).mark_expired(session_id)
            return "EXPIRED" if expired is not None else None
        return None


async def _fulfil(session: AsyncSession, session_id: str) -> bool:
    """Mark PAID and tell the staff, exactly once however many times Stripe confirms."""
    paid = await PaymentRepository(session).mark_paid(session_id)
    return paid is not None and await _tell_paid(session, paid)


async def _tell_paid(session: AsyncSession, paid: PaymentSummary) -> bool:
    """A payment just marked PAID by card: the staff's message and the member's receipt."""
    await NotificationService(session).record("payment_paid", messages.payment_received(paid))
    await _record_receipt(session, paid, how="card (Stripe Checkout)")
    return True


def _what(payment: PaymentSummary) -> str:
    return "late return fine" if payment.type == PaymentType.FINE.value else "borrowing fee"


async def _record_receipt(session: AsyncSession, paid: PaymentSummary, *, how: str) -> None:
    """The member's receipt: amount, what for, how paid, when."""
    receipt = notices.receipt(
        payment_id=paid.id,
        title=paid.title,
        amount=paid.money_to_pay,
        what=_what(paid),
        how=how,
        paid_at=paid.paid_at or clock.now(),
    )
    await MemberNoticeService(session).record(Recipient(paid.user_id, paid.email), receipt)


def _signed_at(header: str) -> int:
    """The `t=` timestamp of a Stripe-Signature header the SDK has verified, read as the SDK
    reads it (the first `t` item)."""
    for item in header.split(","):
        parts = item.split("=", 2)
        if parts[0] == "t":
            return int(parts[1])
    raise InvalidSignatureError
