from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response

from library_service.core.errors import error_responses
from library_service.core.pagination import Page, PageDep, make_page
from library_service.models import PaymentStatus, PaymentType
from library_service.payments.landing import Landing, wants_html
from library_service.payments.schemas import (
    CheckoutCancelled,
    PaymentFilters,
    PaymentOutcome,
    PaymentRead,
    PaymentTotals,
    WaiverCreate,
    WebhookReceipt,
)
from library_service.services import PaymentServiceDep
from library_service.users.dependencies import CurrentUser, Idempotent, StaffUser
from library_service.web.dependencies import SettingsDep
from library_service.web.idempotency import IDEMPOTENT_RESPONSES
from library_service.web.params import CleanStr, IdPath, UserIdFilter
from library_service.web.routing import domain_router

router = domain_router("payments")

SessionIdQuery = Annotated[
    CleanStr, Query(min_length=1, max_length=255, description="Stripe's id.")
]


@router.get("/", operation_id="payments_list", responses=error_responses(401))
async def list_payments(
    request: Request,
    user: CurrentUser,
    service: PaymentServiceDep,
    page: PageDep,
    user_id: UserIdFilter = None,
    status: PaymentStatus | None = None,
    type: PaymentType | None = None,
) -> Page[PaymentRead]:
    """Your payments (staff: everyone's, optionally one user's), newest first."""
    filters = PaymentFilters(user_id=user_id, status=status, type=type)
    payments, count = await service.list_payments(user, filters, page)
    return make_page(request, page, count, [PaymentRead.model_validate(p) for p in payments])


@router.get("/totals/", operation_id="payments_totals", responses=error_responses(400, 401, 403))
async def payment_totals(
    _: StaffUser,
    service: PaymentServiceDep,
    since: Annotated[date | None, Query(description="From this library date on.")] = None,
    until: Annotated[date | None, Query(description="Up to this library date, included.")] = None,
) -> PaymentTotals:
    """What was collected, by card and in cash, and what was waived, apart (staff), over
    library days: `until` is today unless given, `since` is `until` unless given (so by
    default, today). A payment counts on the day it was paid, a waiver on its day."""
    return await service.totals(since, until)


# For a browser (Accept: text/html) the redirects answer a page, or with FRONTEND_URL a 303
# to the front end; API clients get JSON.
_BROWSER_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}, "description": "JSON, or a page for a browser"},
    303: {"description": "With FRONTEND_URL: to {FRONTEND_URL}/payments/{id}?status=…"},
}


async def get_landing(settings: SettingsDep) -> Landing:
    return Landing(settings)


LandingDep = Annotated[Landing, Depends(get_landing)]


@router.get(
    "/success/",
    operation_id="payments_success",
    response_model=PaymentOutcome,
    responses={**_BROWSER_ANSWERS, **error_responses(400, 404)},
)
async def payment_success(
    request: Request, session_id: SessionIdQuery, service: PaymentServiceDep, landing: LandingDep
) -> Response | PaymentOutcome:
    """Stripe's redirect after checkout: confirms with Stripe and marks the payment PAID."""
    if wants_html(request):
        return await landing.success(service, session_id)
    payment = await service.confirm_paid(session_id)
    return PaymentOutcome(
        detail="Payment received, thank you!", payment=PaymentRead.model_validate(payment)
    )


@router.get(
    "/cancel/",
    operation_id="payments_cancel",
    response_model=CheckoutCancelled,
    responses={**_BROWSER_ANSWERS, **error_responses(404)},
)
async def payment_cancel(
    request: Request, session_id: SessionIdQuery, service: PaymentServiceDep, landing: LandingDep
) -> Response | CheckoutCancelled:
    """Stripe's redirect when the payer backs out: the session stays payable for a while."""
    if wants_html(request):
        return await landing.cancel(service, session_id)
    payment = await service.describe_cancel(session_id)
    return CheckoutCancelled(
        detail=(
            "Payment was not completed. You can pay later with the same link while its "
            "checkout session is open (24 hours from its creation); after that, renew the "
            "payment to get a new link."
        ),
        payment=PaymentRead.model_validate(payment),
        expires_at=payment.session_expires_at,
    )


@router.post("/webhook/", operation_id="payments_webhook", responses=error_responses(400, 413))
async def stripe_webhook(request: Request, service: PaymentServiceDep) -> WebhookReceipt:
    """Stripe's signed event notifications (Checkout Session completed/expired)."""
    payload = await request.body()
    handled = await service.handle_webhook(payload, request.headers.get("stripe-signature"))
    return WebhookReceipt(handled=handled)


@router.get("/{payment_id}/", operation_id="payments_read", responses=error_responses(401, 404))
async def read_payment(
    payment_id: IdPath, user: CurrentUser, service: PaymentServiceDep
) -> PaymentRead:
    """One of your payments (staff: any)."""
    return PaymentRead.model_validate(await service.get_payment(payment_id, user))


@router.post(
    "/{payment_id}/renew/",
    operation_id="payments_renew",
    dependencies=[Idempotent],
    responses={**error_responses(400, 401, 404, 409), **IDEMPOTENT_RESPONSES},
)
async def renew_payment(
    payment_id: IdPath, user: CurrentUser, service: PaymentServiceDep
) -> PaymentRead:
    """A new checkout session for an expired payment (or one that has none yet)."""
    return PaymentRead.model_validate(await service.renew(payment_id, user))


@router.post(
    "/{payment_id}/cash/",
    operation_id="payments_cash",
    dependencies=[Idempotent],
    responses={**error_responses(400, 401, 403, 404, 409), **IDEMPOTENT_RESPONSES},
)
async def take_cash(
    payment_id: IdPath, staff: StaffUser, service: PaymentServiceDep
) -> PaymentRead:
    """Record an unpaid payment as paid in cash at the desk (staff); its checkout link ends."""
    return PaymentRead.model_validate(await service.take_cash(payment_id, staff))


@router.post(
    "/{payment_id}/waive/",
    operation_id="payments_waive",
    dependencies=[Idempotent],
    responses={**error_responses(400, 401, 403, 404, 409, 413), **IDEMPOTENT_RESPONSES},
)
async def waive_payment(
    payment_id: IdPath, data: WaiverCreate, staff: StaffUser, service: PaymentServiceDep
) -> PaymentRead:
    """Waive an unpaid payment, with the reason (staff); its checkout link ends."""
    return PaymentRead.model_validate(await service.waive(payment_id, staff, data.reason))
