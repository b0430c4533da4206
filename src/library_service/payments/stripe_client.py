"""The one place that talks to Stripe: Checkout Sessions through the official SDK's async API.

The base address comes from `STRIPE_API_BASE`, so the same code talks to Stripe, to the
sandbox of the local run, or to the sandbox mounted in tests. No retries happen inside a
request: a failure is reported at once as `PaymentProviderUnavailableError`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ParamSpec, TypeVar

import stripe

from library_service.core.config import Settings
from library_service.core.money import as_integer_cents
from library_service.payments.errors import PaymentProviderUnavailableError

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    id: str
    url: str | None
    status: str  # open | complete | expired
    payment_status: str  # paid | unpaid | no_payment_required
    expires_at: datetime

    @property
    def is_paid(self) -> bool:
        return self.payment_status == "paid"

    @classmethod
    def from_stripe(cls, session: Any) -> CheckoutSession:
        return cls(
            id=session.id,
            url=session.url,
            status=session.status,
            payment_status=session.payment_status,
            expires_at=datetime.fromtimestamp(session.expires_at, UTC),
        )


def _reported_as_unavailable(
    action: str,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """A failure of Stripe's that the method lets through is logged (as the `action` that
    failed) and raised as PaymentProviderUnavailableError."""

    def decorate(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(method)
        async def asking_stripe(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return await method(*args, **kwargs)
            except stripe.StripeError as exc:
                logger.warning("Stripe: could not %s: %s", action, exc.user_message or exc)
                raise PaymentProviderUnavailableError from exc

        return asking_stripe

    return decorate


class StripeGateway:
    def __init__(self, settings: Settings) -> None:
        self._http = stripe.HTTPXClient(timeout=settings.STRIPE_TIMEOUT_SECONDS)
        self._client = stripe.StripeClient(
            settings.stripe_api_key,
            base_addresses={"api": settings.STRIPE_API_BASE},
            http_client=self._http,
            max_network_retries=0,
        )

    @_reported_as_unavailable("create a Checkout Session")
    async def create_checkout_session(
        self,
        *,
        payment_id: int,
        amount: Decimal,
        product_name: str,
        description: str,
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> CheckoutSession:
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": as_integer_cents(amount),
                        "product_data": {"name": product_name, "description": description},
                    },
                }
            ],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "client_reference_id": str(payment_id),
            "metadata": {"payment_id": str(payment_id)},
        }
        session = await self._client.v1.checkout.sessions.create_async(
            params,  # type: ignore[arg-type]
            {"idempotency_key": idempotency_key},
        )
        return CheckoutSession.from_stripe(session)

    @_reported_as_unavailable("retrieve a Checkout Session")
    async def retrieve_checkout_session(self, session_id: str) -> CheckoutSession | None:
        """The session, or None if Stripe does not know it."""
        try:
            session = await self._client.v1.checkout.sessions.retrieve_async(session_id)
        except stripe.InvalidRequestError as exc:
            if exc.code != "resource_missing":
                raise
            return None
        return CheckoutSession.from_stripe(session)

    @_reported_as_unavailable("expire a Checkout Session")
    async def expire_checkout_session(self, session_id: str) -> CheckoutSession | None:
        """Expire an open session; returns its final state (None if unknown to Stripe)."""
        try:
            session = await self._client.v1.checkout.sessions.expire_async(session_id)
        except stripe.InvalidRequestError:
            # Already complete or expired: report what it is now.
            return await self.retrieve_checkout_session(session_id)
        return CheckoutSession.from_stripe(session)

    async def close(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]
