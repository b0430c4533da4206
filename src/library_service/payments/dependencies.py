from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from library_service.core.dependencies import ReadSessionDep, SessionDep, SettingsDep
from library_service.payments.service import CheckoutUrls, PaymentService
from library_service.payments.stripe_client import StripeGateway


async def get_stripe(request: Request) -> StripeGateway:
    gateway: StripeGateway = request.app.state.stripe
    return gateway


async def get_payment_service(
    session: SessionDep,
    settings: SettingsDep,
    stripe: Annotated[StripeGateway, Depends(get_stripe)],
) -> PaymentService:
    return PaymentService(session, settings=settings, stripe=stripe)


async def get_payment_reader(
    session: ReadSessionDep,
    settings: SettingsDep,
    stripe: Annotated[StripeGateway, Depends(get_stripe)],
) -> PaymentService:
    """The service on an autocommit session, for endpoints that only read."""
    return PaymentService(session, settings=settings, stripe=stripe)


async def get_checkout_urls(request: Request, settings: SettingsDep) -> CheckoutUrls:
    """Stripe's redirects come back to PUBLIC_BASE_URL, or to the origin of this request."""
    return CheckoutUrls.for_base(settings.PUBLIC_BASE_URL or str(request.base_url))


PaymentServiceDep = Annotated[PaymentService, Depends(get_payment_service)]
PaymentReaderDep = Annotated[PaymentService, Depends(get_payment_reader)]
CheckoutUrlsDep = Annotated[CheckoutUrls, Depends(get_checkout_urls)]
