from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from library_service.core.dependencies import SettingsDep, UnitOfWorkDep
from library_service.payments.checkout import CheckoutSaga, CheckoutUrls
from library_service.payments.service import PaymentService
from library_service.payments.stripe_client import StripeGateway


async def get_checkout(request: Request, uow: UnitOfWorkDep, settings: SettingsDep) -> CheckoutSaga:
    """The checkout saga; Stripe sends the payer back to PUBLIC_BASE_URL, or to the origin
    of this request."""
    stripe: StripeGateway = request.app.state.stripe
    urls = CheckoutUrls.for_base(settings.PUBLIC_BASE_URL or str(request.base_url))
    return CheckoutSaga(uow, stripe, urls)


CheckoutDep = Annotated[CheckoutSaga, Depends(get_checkout)]


async def get_payment_service(
    uow: UnitOfWorkDep, settings: SettingsDep, checkout: CheckoutDep
) -> PaymentService:
    return PaymentService(uow, settings=settings, checkout=checkout)


PaymentServiceDep = Annotated[PaymentService, Depends(get_payment_service)]
