from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
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


class Tally(BaseModel):
    count: int
    amount: Money


class PaymentTotals(BaseModel):
    """What the desk and Stripe took, and what was waived, over library days."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "since": "2026-12-01",
                    "until": "2026-12-03",
                    "card": {"count": 12, "amount": "84.50"},
                    "cash": {"count": 3, "amount": "21.00"},
                    "collected": {"count": 15, "amount": "105.50"},
                    "waived": {"count": 1, "amount": "4.50"},
                }
            ]
        }
    )

    since: date
    until: date
    card: Tally = Field(description="Paid by card (Stripe Checkout).")
    cash: Tally = Field(description="Paid in cash at the desk.")
    collected: Tally = Field(description="Card and cash together.")
    waived: Tally = Field(description="Waived by staff: owed no more, and not collected.")


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
