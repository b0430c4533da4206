from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import stripe
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.core.config import Settings
from library_service.core.db import read_without_transaction, release_connection
from library_service.core.errors import AppError, NotFoundError, ServiceUnavailableError
from library_service.core.pagination import PageParams
from library_service.models import Payment, PaymentStatus, PaymentType
from library_service.notifications import messages
from library_service.notifications.service import NotificationService
from library_service.payments.repository import PaymentFilters, PaymentRepository
from library_service.payments.stripe_client import (
    CheckoutSession,
    StripeGateway,
    StripeUnavailableError,
)
from library_service.users.repository import AuthUser

logger = logging.getLogger(__name__)

PAID_EVENTS = {"checkout.session.completed", "checkout.session.async_payment_succeeded"}
EXPIRED_EVENT = "checkout.session.expired"


@dataclass(frozen=True, slots=True)
class CheckoutUrls:
    """Where Stripe sends the payer back; Stripe fills in {CHECKOUT_SESSION_ID}."""

    success_url: str
    cancel_url: str

    @classmethod
    def for_base(cls, base_url: str) -> CheckoutUrls:
        base = base_url.rstrip("/")
        query = "?session_id={CHECKOUT_SESSION_ID}"
        return cls(
            success_url=f"{base}/api/payments/success/{query}",
            cancel_url=f"{base}/api/payments/cancel/{query}",
        )


@dataclass(frozen=True, slots=True)
class CheckoutItem:
    """What the payer sees on Stripe's page, and the amount (already chargeable)."""

    name: str
    description: str
    amount: Decimal

    @classmethod
    def for_payment(
        cls, payment_type: PaymentType, *, title: str, detail: str, amount: Decimal
    ) -> CheckoutItem:
        what = "Late return fine" if payment_type == PaymentType.FINE else "Borrowing"
        return cls(name=f"{what}: «{title}»", description=detail, amount=amount)


class PaymentProviderUnavailableError(ServiceUnavailableError):
    code = "payment_provider_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "The payment provider is unavailable right now; nothing was changed, please retry.",
            headers={"Retry-After": "10"},
        )


class PaymentNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("Payment not found.", code="payment_not_found")


class UnknownSessionError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No payment has this checkout session.", code="unknown_session")


class PaymentService:
    def __init__(self, session: AsyncSession, *, settings: Settings, stripe: StripeGateway) -> None:
        self.session = session
        self.settings = settings
        self.stripe = stripe
        self.payments = PaymentRepository(session)
        self.notifications = NotificationService(session)

    # -- used by borrowings -------------------------------------------------------------

    async def reserve_id(self) -> int:
        return await self.payments.reserve_id()

    async def open_checkout(
        self,
        payment_id: int,
        item: CheckoutItem,
        urls: CheckoutUrls,
        *,
        idempotency_key: str | None = None,
    ) -> CheckoutSession:
        """Create a Checkout Session; call it with no row lock held. Raises
        StripeUnavailableError. Without `idempotency_key`, a fresh one is made: two calls
        then mean two sessions."""
        return await self.stripe.create_checkout_session(
            payment_id=payment_id,
            amount=item.amount,
            product_name=item.name,
            description=item.description,
            success_url=urls.success_url,
            cancel_url=urls.cancel_url,
            idempotency_key=idempotency_key or f"payment-{payment_id}-{secrets.token_hex(12)}",
        )

    async def abandon_checkout(self, checkout: CheckoutSession | None) -> None:
        """Expire a session whose payment was not recorded, so it can never be paid."""
        if checkout is None:
            return
        try:
            await self.stripe.expire_checkout_session(checkout.id)
        except StripeUnavailableError:
            logger.warning("could not expire abandoned session %s; it lapses in 24 h", checkout.id)

    async def add_payment(
        self,
        *,
        payment_id: int,
        borrowing_id: int,
        payment_type: PaymentType,
        amount: Decimal,
        checkout: CheckoutSession | None,
    ) -> Payment:
        return await self.payments.add(
            Payment(
                id=payment_id,
                borrowing_id=borrowing_id,
                type=payment_type.value,
                status=PaymentStatus.PENDING.value,
                money_to_pay=amount,
                session_id=checkout.id if checkout else None,
                session_url=checkout.url if checkout else None,
                session_expires_at=checkout.expires_at if checkout else None,
            )
        )

    # -- reading ------------------------------------------------------------------------

    async def list_payments(
        self, user: AuthUser, filters: PaymentFilters, page: PageParams
    ) -> tuple[Sequence[Payment], int]:
        if not user.is_staff:  # members see their own, whatever they ask for
            filters = PaymentFilters(user_id=user.id, status=filters.status, type=filters.type)
        return await self.payments.list(filters, page)

    async def get_payment(self, payment_id: int, user: AuthUser) -> Payment:
        payment = await self.payments.get(payment_id, user_id=None if user.is_staff else user.id)
        if payment is None:
            raise PaymentNotFoundError
        return payment

    # -- Stripe's redirects and webhooks ------------------------------------------------

    async def confirm_paid(self, session_id: str) -> Payment:
        """The success redirect: ask Stripe, and mark PAID only if the session is paid."""
        await read_without_transaction(self.session)
        payment = await self.payments.get_by_session_id(session_id)
        if payment is None:
            raise UnknownSessionError
        if payment.status == PaymentStatus.PAID:
            return payment
        payment_id = payment.id
        await release_connection(self.session)
        try:
            checkout = await self.stripe.retrieve_checkout_session(session_id)
        except StripeUnavailableError as exc:
            raise PaymentProviderUnavailableError from exc
        if checkout is None:
            raise UnknownSessionError
        if not checkout.is_paid:
            raise AppError("This checkout session is not paid yet.", code="payment_not_completed")
        await self._fulfil(session_id)
        return await self._reload(payment_id)

    async def describe_cancel(self, session_id: str) -> Payment:
        payment = await self.payments.get_by_session_id(session_id)
        if payment is None:
            raise UnknownSessionError
        return payment

    async def handle_webhook(self, payload: bytes, signature: str | None) -> bool:
        """Apply a signed Stripe event once; True if it changed something."""
        secret = self.settings.STRIPE_WEBHOOK_SECRET
        if not secret:
            raise AppError("Webhooks are not configured.", code="webhook_not_configured")
        try:
            event = stripe.Webhook.construct_event(payload, signature or "", secret)
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise AppError(
                "The Stripe-Signature header does not match the payload.",
                code="invalid_signature",
            ) from exc
        if not await self.payments.record_event(event.id, event.type):
            return False  # seen before: Stripe delivers at least once
        data_object: Any = event.data.object
        if event.type in PAID_EVENTS and getattr(data_object, "payment_status", None) == "paid":
            return await self._fulfil(data_object.id)
        if event.type == EXPIRED_EVENT:
            return await self.payments.mark_expired(data_object.id) is not None
        return False

    async def _fulfil(self, session_id: str) -> bool:
        """Mark PAID and tell the staff, exactly once however many times Stripe confirms."""
        row = await self.payments.mark_paid(session_id)
        if row is None:
            return False
        await self.notifications.record(
            "payment_paid",
            messages.payment_received(
                payment_id=row.id,
                payment_type=row.type,
                amount=row.money_to_pay,
                email=row.email,
                title=row.title,
                borrowing_id=row.borrowing_id,
            ),
        )
        return True

    # -- renewal ------------------------------------------------------------------------

    async def renew(self, payment_id: int, user: AuthUser, urls: CheckoutUrls) -> Payment:
        """Give an expired payment (or one still without a session) a new Checkout Session."""
        payment = await self.get_payment(payment_id, user)
        if payment.status == PaymentStatus.PAID:
            raise AppError("This payment is already paid.", code="payment_already_paid")
        old_session_id = payment.session_id
        still_pending = payment.status == PaymentStatus.PENDING
        item = await self._checkout_item(payment_id)
        await release_connection(self.session)
        try:
            if still_pending and old_session_id is not None:
                # Stripe may have expired it before its webhook reached us: ask.
                current = await self.stripe.retrieve_checkout_session(old_session_id)
                if current is not None and current.is_paid:
                    await self._fulfil(old_session_id)
                    return await self._reload(payment_id)
                if current is not None and current.status == "open":
                    raise AppError(
                        "This payment's checkout session is still open; pay it at its session_url.",
                        code="payment_not_expired",
                    )
            checkout = await self.open_checkout(payment_id, item, urls)
        except StripeUnavailableError as exc:
            raise PaymentProviderUnavailableError from exc
        attached = await self.payments.attach_session(
            payment_id,
            session_id=checkout.id,
            session_url=checkout.url,
            expires_at=checkout.expires_at,
            expected_session_id=old_session_id,
        )
        if not attached:  # renewed or paid concurrently
            await self.session.rollback()
            await self.abandon_checkout(checkout)
            raise AppError(
                "This payment changed meanwhile; reload it and try again.", code="payment_changed"
            )
        return await self._reload(payment_id)

    async def attach_missing_session(self, payment_id: int, urls: CheckoutUrls) -> bool:
        """Worker job: give a PENDING payment without a session its first one.
        Raises StripeUnavailableError (the job retries)."""
        payment = await self.payments.get(payment_id)
        if payment is None or payment.status != PaymentStatus.PENDING or payment.session_id:
            return False
        # Stable per payment row: concurrent runs of this job get one and the same session.
        key = f"payment-{payment_id}-{payment.created_at.timestamp():.0f}-attach"
        item = await self._checkout_item(payment_id)
        await release_connection(self.session)
        checkout = await self.open_checkout(payment_id, item, urls, idempotency_key=key)
        attached = await self.payments.attach_session(
            payment_id,
            session_id=checkout.id,
            session_url=checkout.url,
            expires_at=checkout.expires_at,
            expected_session_id=None,
        )
        if not attached:
            current = await self.payments.get(payment_id)
            # The same idempotency key gives a concurrent run the same session: keep it.
            if current is None or current.session_id != checkout.id:
                await self.session.rollback()
                await self.abandon_checkout(checkout)
        return attached

    async def _checkout_item(self, payment_id: int) -> CheckoutItem:
        row = await self.payments.describe(payment_id)
        return CheckoutItem.for_payment(
            PaymentType(row.type),
            title=row.title,
            detail=f"by {row.author}, borrowing #{row.borrowing_id}",
            amount=row.money_to_pay,
        )

    async def _reload(self, payment_id: int) -> Payment:
        payment = await self.session.get(Payment, payment_id, populate_existing=True)
        assert payment is not None
        return payment

    # -- expiry poll --------------------------------------------------------------------

    async def check_session(self, payment_id: int, session_id: str) -> str | None:
        """Bring one PENDING payment in line with its session at Stripe (no lock held
        while asking): PAID if paid, EXPIRED if expired; None if still open."""
        checkout = await self.stripe.retrieve_checkout_session(session_id)
        if checkout is None:
            return None
        if checkout.is_paid:
            return "PAID" if await self._fulfil(session_id) else None
        if checkout.status == "expired":
            return "EXPIRED" if await self.payments.mark_expired(session_id) else None
        return None
