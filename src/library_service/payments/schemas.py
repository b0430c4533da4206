from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from library_service.core.money import Money
from library_service.models import PaymentMethod, PaymentStatus, PaymentType
from library_service.users.schemas import MemberRowFilters
from library_service.web.params import CleanStr, InputModel


class PaymentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: PaymentStatus
    type: PaymentType
    borrowing_id: int
    session_url: str | None
    session_id: str | None
    money_to_pay: Money
    method: PaymentMethod | None = Field(
        description="How it was settled: card (Stripe), cash (at the desk) or waived; null "
        "while unpaid."
    )
    paid_at: datetime | None
    recorded_by: int | None = Field(
        description="The member of staff who took the cash or waived it."
    )


class WaiverCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "Book returned damaged by the flood."}]}
    )

    reason: str | None = Field(
        default=None, description="Why the payment is waived: 1 to 500 characters (required)."
    )


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
class PaymentFilters(MemberRowFilters):
    status: PaymentStatus | None = None
    type: PaymentType | None = None


# What the webhook reads of a Stripe event, once its signature is verified. Checked like any
# input: a signed event is Stripe's, but its shape still decides whether it can be stored.
StripeId = Annotated[CleanStr, Field(min_length=1, max_length=255)]


class StripeEvent(BaseModel):
    id: StripeId
    type: Annotated[CleanStr, Field(min_length=1, max_length=100)]
    data: dict[str, object] | None = None


class CheckoutSessionObject(BaseModel):
    id: StripeId
    payment_status: Annotated[CleanStr, Field(max_length=32)] | None = None


class CheckoutSessionEventData(BaseModel):
    object: CheckoutSessionObject
