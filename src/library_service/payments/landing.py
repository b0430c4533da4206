"""What a member's browser sees when Stripe sends it back: a small page, or with FRONTEND_URL
a redirect to the front end's own page of the payment. API clients keep the JSON answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from library_service.core.config import Settings
from library_service.core.errors import AppError
from library_service.models import Payment, PaymentStatus
from library_service.notifications.messages import usd
from library_service.payments.errors import PaymentNotCompletedError
from library_service.payments.repository import PaymentSummary
from library_service.payments.service import PaymentService

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(),
)
Tone = Literal["paid", "open", "problem"]


def wants_html(request: Request) -> bool:
    """A browser asks for HTML; API clients and generated clients do not."""
    return "text/html" in request.headers.get("accept", "")


@dataclass(frozen=True, slots=True)
class Landing:
    settings: Settings

    def redirect(self, payment_id: int, status: str) -> Response | None:
        """To the front end's page of the payment, when FRONTEND_URL is set."""
        if not self.settings.FRONTEND_URL:
            return None
        url = f"{self.settings.FRONTEND_URL}/payments/{payment_id}?status={status}"
        return RedirectResponse(url, status_code=303)

    async def success(self, service: PaymentService, session_id: str) -> Response:
        """Confirm with Stripe as the JSON answer does, then show the outcome."""
        try:
            payment = await service.confirm_paid(session_id)
        except PaymentNotCompletedError:
            payment = await service.describe_cancel(session_id)
            summary = await service.summary(payment.id)
            return self.redirect(payment.id, "unpaid") or self.not_completed(payment, summary)
        except AppError as error:
            return self.refused(error)
        return self.redirect(payment.id, "paid") or self.paid(await service.summary(payment.id))

    async def cancel(self, service: PaymentService, session_id: str) -> Response:
        try:
            payment = await service.describe_cancel(session_id)
        except AppError as error:
            return self.refused(error)
        summary = await service.summary(payment.id)
        return self.redirect(payment.id, "cancelled") or self.not_completed(payment, summary)

    def paid(self, summary: PaymentSummary) -> HTMLResponse:
        return _page(
            tone="paid",
            heading="Payment received, thank you!",
            message="Your payment went through; you can close this page.",
            summary=summary,
            status=PaymentStatus.PAID,
        )

    def not_completed(self, payment: Payment, summary: PaymentSummary) -> HTMLResponse:
        status = PaymentStatus(payment.status)
        if status == PaymentStatus.PAID:
            return self.paid(summary)
        if status == PaymentStatus.WAIVED:
            return _page(
                tone="paid",
                heading="Nothing to pay",
                message="The library waived this payment; you can close this page.",
                summary=summary,
                status=status,
            )
        payable = status == PaymentStatus.PENDING and payment.session_url is not None
        return _page(
            tone="open",
            heading="Payment not completed",
            message="Nothing was charged.",
            summary=summary,
            status=status,
            next_step=_until(payment.session_expires_at) if payable else _renew(payment.id),
            action_url=payment.session_url if payable else None,
            action_label="Pay now",
        )

    def refused(self, error: AppError) -> HTMLResponse:
        return _page(
            tone="problem",
            heading="We could not confirm this payment",
            message=error.message,
            status_code=error.status_code,
        )


def _until(expires_at: datetime | None) -> str:
    when = f" until {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ""
    return f"The same link stays payable{when}; after that, renew the payment for a new one."


def _renew(payment_id: int) -> str:
    return (
        f"This link can no longer be paid: renew payment #{payment_id} for a new one "
        f"(POST /api/payments/{payment_id}/renew/)."
    )


def _page(
    *,
    tone: Tone,
    heading: str,
    message: str,
    summary: PaymentSummary | None = None,
    status: PaymentStatus | None = None,
    next_step: str | None = None,
    action_url: str | None = None,
    action_label: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    html = _templates.get_template("landing.html").render(
        tone=tone,
        heading=heading,
        message=message,
        summary=summary,
        amount=usd(summary.money_to_pay) if summary else None,
        status=status.value.lower() if status else None,
        next_step=next_step,
        action_url=action_url,
        action_label=action_label,
    )
    return HTMLResponse(html, status_code=status_code)
