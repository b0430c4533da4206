"""Money is Decimal, rounded half-up to cents, and travels as a decimal string ("1.50")."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import PlainSerializer

CENT = Decimal("0.01")
# Stripe refuses USD charges below 50 cents; smaller amounts are charged (and stored) as this.
MIN_CHARGE = Decimal("0.50")
# The most one Stripe Checkout charge can be in USD (99,999,999 cents); the amount columns
# (NUMERIC(10,2)) hold it with room to spare.
MAX_CHARGE = Decimal("999999.99")


def to_cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def chargeable(amount: Decimal) -> Decimal:
    """Round to cents and lift to Stripe's minimum charge."""
    return max(to_cents(amount), MIN_CHARGE)


def as_integer_cents(amount: Decimal) -> int:
    return int(to_cents(amount) * 100)


Money = Annotated[
    Decimal,
    PlainSerializer(lambda amount: f"{to_cents(amount):f}", return_type=str, when_used="json"),
]
