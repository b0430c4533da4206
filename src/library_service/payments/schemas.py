from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class PaymentFilters:
    user_id: int | None = None  # the member's own id, or a staff filter
    status: PaymentStatus | None = None
    type: PaymentType | None = None
