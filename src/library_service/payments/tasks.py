"""Payment jobs: the Stripe expiry poll and sessions for fines that could not get one."""

from __future__ import annotations

import logging
from typing import Any

from library_service.core.db import Database, unit_of_work
from library_service.payments.repository import PaymentRepository
from library_service.payments.service import CheckoutUrls, PaymentService
from library_service.payments.stripe_client import StripeUnavailableError

logger = logging.getLogger(__name__)

POLL_BATCH = 100  # Stripe allows 100 reads/s; a minute's poll stays far below


def _service(session: Any, ctx: dict[str, Any]) -> PaymentService:
    return PaymentService(session, settings=ctx["settings"], stripe=ctx["stripe"])


async def poll_expired_sessions(ctx: dict[str, Any]) -> dict[str, int]:
    """PENDING payments whose session Stripe reports expired become EXPIRED (and paid ones,
    whose confirmation was missed, PAID). Each payment is checked in its own transaction,
    with no lock held while Stripe is asked."""
    db: Database = ctx["db"]
    async with db.autocommit_sessionmaker() as session:
        pending = await PaymentRepository(session).pending_with_session(limit=POLL_BATCH)
    outcome = {"PAID": 0, "EXPIRED": 0, "open": 0, "unreachable": 0}
    for payment_id, session_id in pending:
        try:
            async with unit_of_work(db, ctx["redis"]) as session:
                changed = await _service(session, ctx).check_session(payment_id, session_id)
        except StripeUnavailableError:
            outcome["unreachable"] += 1
            break  # Stripe is down: try again next minute
        outcome[changed or "open"] += 1
    if outcome["PAID"] or outcome["EXPIRED"]:
        logger.info("expiry poll: %s", outcome)
    return outcome


async def attach_missing_sessions(ctx: dict[str, Any]) -> int:
    """Fines recorded while Stripe was down get their Checkout Session."""
    db: Database = ctx["db"]
    async with db.autocommit_sessionmaker() as session:
        payment_ids = await PaymentRepository(session).pending_without_session(limit=POLL_BATCH)
    attached = 0
    for payment_id in payment_ids:
        try:
            attached += await attach_missing_session(ctx, payment_id)
        except StripeUnavailableError:
            break
    return attached


async def attach_missing_session(ctx: dict[str, Any], payment_id: int) -> bool:
    """Job: one payment's first session. Safe to run twice (same idempotency key)."""
    # Production requires PUBLIC_BASE_URL; the local run serves on the default port.
    urls = CheckoutUrls.for_base(ctx["settings"].PUBLIC_BASE_URL or "http://127.0.0.1:8000")
    async with unit_of_work(ctx["db"], ctx["redis"]) as session:
        attached = await _service(session, ctx).attach_missing_session(payment_id, urls)
    if attached:
        logger.info("payment %s got its checkout session", payment_id)
    return attached
