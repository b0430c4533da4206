"""The staff message of a payment received."""

from __future__ import annotations

from library_service.notifications.messages import usd
from library_service.payments.repository import PaymentSummary


def payment_received(paid: PaymentSummary) -> str:
    what = "fine" if paid.type == "FINE" else "borrowing fee"
    how = "💵 Cash taken at the desk" if paid.method == "cash" else "💳 Payment received"
    return (
        f"{how}: {usd(paid.money_to_pay)} {what}\n"
        f"Member: {paid.email}\n"
        f"For «{paid.title}» (borrowing #{paid.borrowing_id}, payment #{paid.id})"
    )
