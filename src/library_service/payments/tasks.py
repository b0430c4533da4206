"""Payment jobs: the Stripe expiry poll and sessions for fines that could not get one."""

from __future__ import annotations

import logging
from typing import Any

from library_service.payments.errors import PaymentProviderUnavailableError
from library_service.payments.service import PaymentService

logger = logging.getLogger(__name__)

POLL_BATCH = 100  # Stripe allows 100 reads/s; a minute's poll stays far below


def _service(ctx: dict[str, Any]) -> PaymentService:
    # Checkout links made here send payers back to PUBLIC_BASE_URL (no request to ask).
    services = ctx["services"]
    payments: PaymentService = services.payments(services.unit_of_work())
    return payments


async def poll_expired_sessions(ctx: dict[str, Any]) -> dict[str, int]:
    """PENDING payments whose session Stripe reports expired become EXPIRED (and paid ones,
    whose confirmation was missed, PAID). Each payment is checked in its own transaction,
    with no lock held while Stripe is asked."""
    service = _service(ctx)
    open_sessions = await service.open_sessions(limit=POLL_BATCH)
    outcome = {"PAID": 0, "EXPIRED": 0, "open": 0, "unreachable": 0}
    for open_session in open_sessions:
        try:
            changed = await service.check_session(open_session.payment_id, open_session.session_id)
        except PaymentProviderUnavailableError:
            outcome["unreachable"] += 1
            break  # Stripe is down: try again next minute
        outcome[changed or "open"] += 1
    if outcome["PAID"] or outcome["EXPIRED"]:
        logger.info("expiry poll: %s", outcome)
    return outcome


async def attach_missing_sessions(ctx: dict[str, Any]) -> int:
    """Fines recorded while Stripe was down get their Checkout Session."""
    payment_ids = await _service(ctx).payments_without_session(limit=POLL_BATCH)
    attached = 0
    for payment_id in payment_ids:
        try:
            attached += await attach_missing_session(ctx, payment_id)
        except PaymentProviderUnavailableError:
            break
    return attached


async def attach_missing_session(ctx: dict[str, Any], payment_id: int) -> bool:
    """Job: one payment's first session. Safe to run twice (same idempotency key)."""
    attached = await _service(ctx).attach_missing_session(payment_id)
    if attached:
        logger.info("payment %s got its checkout session", payment_id)
    return attached
