"""The checkout saga: every write that charges a member runs inside `CheckoutSaga.open`
(a new payment) or `CheckoutSaga.reopen` (a new session for an existing one).

1. The payment's id is reserved (Stripe's metadata names it).
2. Stripe is asked for a Checkout Session, with no row lock held.
3. In one transaction, the caller's block locks its rows, checks its rules again and
   writes, the payment row included.
4. If anything fails after step 2, the session is expired, so it can never be paid.

Stripe down at step 2 answers 503 with nothing changed (`PaymentProviderUnavailableError`),
unless the charge must be recorded anyway (a late return's fine): then the payment is written
without a session and the worker gives it one as soon as Stripe answers.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from library_service.core.db import UnitOfWork
from library_service.core.jobs import defer_job
from library_service.models import Payment, PaymentStatus, PaymentType
from library_service.payments import jobs
from library_service.payments.errors import PaymentProviderUnavailableError
from library_service.payments.repository import PaymentRepository
from library_service.payments.stripe_client import CheckoutSession, StripeGateway

logger = logging.getLogger(__name__)


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
class Charge:
    """What a member is charged (already a chargeable amount), as Stripe's page shows it."""

    type: PaymentType
    title: str
    detail: str
    amount: Decimal

    @property
    def product_name(self) -> str:
        what = "Late return fine" if self.type == PaymentType.FINE else "Borrowing"
        return f"{what}: «{self.title}»"


@dataclass(frozen=True, slots=True)
class OpenedCheckout:
    """A charge with its payment's id and its Stripe session (None: Stripe was down and the
    charge is recorded without one)."""

    payment_id: int
    charge: Charge
    session: CheckoutSession | None

    def new_payment(self, borrowing_id: int | None = None) -> Payment:
        """The PENDING payment row that records this charge (for `borrowing_id`, when the
        caller writes the row itself instead of adding it to a borrowing's payments)."""
        return Payment(
            id=self.payment_id,
            borrowing_id=borrowing_id,
            type=self.charge.type.value,
            status=PaymentStatus.PENDING.value,
            money_to_pay=self.charge.amount,
            session_id=self.session.id if self.session else None,
            session_url=self.session.url if self.session else None,
            session_expires_at=self.session.expires_at if self.session else None,
        )


class PublicBaseUrlMissingError(RuntimeError):
    """A checkout link was needed where no request tells the API's address."""

    def __init__(self) -> None:
        super().__init__(
            "PUBLIC_BASE_URL is not set: a checkout session cannot be opened outside a "
            "request (`library-service run` sets it to the address it serves on)."
        )


class CheckoutSaga:
    def __init__(self, uow: UnitOfWork, stripe: StripeGateway, urls: CheckoutUrls | None) -> None:
        self.uow = uow
        self.stripe = stripe
        self.urls = urls

    def open(
        self, charge: Charge, *, stripe_may_be_down: bool = False
    ) -> AbstractAsyncContextManager[tuple[AsyncSession, OpenedCheckout]]:
        """A new payment for `charge`: its session is opened at Stripe, then the block runs
        in one transaction, where the caller locks its rows, checks its rules again and
        writes, `opened.new_payment()` included:

            async with checkout.open(charge) as (session, opened):
                ...  # lock, check, write

        With `stripe_may_be_down` (a late return's fine), Stripe being down is no error:
        the block gets `opened.session` None and the worker opens one later."""
        return self._writing(None, charge, None, may_wait=stripe_may_be_down)

    def reopen(
        self, payment_id: int, charge: Charge, *, idempotency_key: str | None = None
    ) -> AbstractAsyncContextManager[tuple[AsyncSession, OpenedCheckout]]:
        """A new session for the existing payment `payment_id`, then the block writes it.
        `idempotency_key`: Stripe's, when concurrent callers must get one and the same
        session (a fresh one otherwise)."""
        return self._writing(payment_id, charge, idempotency_key, may_wait=False)

    @asynccontextmanager
    async def _writing(
        self, payment_id: int | None, charge: Charge, idempotency_key: str | None, *, may_wait: bool
    ) -> AsyncIterator[tuple[AsyncSession, OpenedCheckout]]:
        if payment_id is None:
            async with self.uow.read() as session:
                payment_id = await PaymentRepository(session).reserve_id()
        checkout = await self._open(payment_id, charge, idempotency_key, may_wait)
        try:
            async with self.uow.write() as session:
                yield session, OpenedCheckout(payment_id, charge, checkout)
                if checkout is None:
                    job_id = jobs.attach_session_job_id(payment_id)
                    defer_job(session, jobs.ATTACH_SESSION, payment_id, job_id=job_id)
        except Exception:
            await self.abandon(checkout)
            raise

    async def _open(
        self, payment_id: int, charge: Charge, idempotency_key: str | None, may_wait: bool
    ) -> CheckoutSession | None:
        if self.urls is None:
            raise PublicBaseUrlMissingError
        try:
            return await self.stripe.create_checkout_session(
                payment_id=payment_id,
                amount=charge.amount,
                product_name=charge.product_name,
                description=charge.detail,
                success_url=self.urls.success_url,
                cancel_url=self.urls.cancel_url,
                # A fresh key unless the caller's must be stable: two calls, two sessions.
                idempotency_key=idempotency_key or f"payment-{payment_id}-{secrets.token_hex(12)}",
            )
        except PaymentProviderUnavailableError:
            if not may_wait:
                raise
            logger.warning("payment %s recorded without a checkout session", payment_id)
            return None

    async def abandon(self, checkout: CheckoutSession | None) -> None:
        """Expire a session whose payment was not recorded, so it can never be paid."""
        if checkout is None:
            return
        try:
            await self.stripe.expire_checkout_session(checkout.id)
        except PaymentProviderUnavailableError:
            logger.warning("could not expire abandoned session %s; it lapses in 24 h", checkout.id)
