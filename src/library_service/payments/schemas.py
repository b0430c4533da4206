from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from library_service.core.money import Money
from library_service.models import PaymentStatus, PaymentType


class PaymentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: PaymentStatus
    type: PaymentType
    borrowing_id: int
    session_url: str | None
    session_id: str | None
    money_to_pay: Money


class PaymentOutcome(BaseModel):
    """What the browser sees after Stripe's redirect."""

    detail: str
    payment: PaymentRead


class CheckoutCancelled(BaseModel):
    detail: str
    payment: PaymentRead
    expires_at: datetime | None


class WebhookReceipt(BaseModel):
    received: Literal[True] = True
    handled: bool
