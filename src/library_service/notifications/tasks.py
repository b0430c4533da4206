"""Notification jobs: deliver one message, sweep up lost deliveries, the daily overdue report."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from arq import Retry

from library_service.core.config import Settings
from library_service.core.db import AnyRow, Database, UnitOfWork
from library_service.core.outages import is_database_unavailable
from library_service.notifications import jobs
from library_service.notifications.repository import DeliveryRepository, NotificationRepository
from library_service.notifications.telegram import TelegramClient, TelegramError

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 15 * 60
RELAY_BATCH = 500
# A sent message must not stay unrecorded (and be sent again) over a database blip: its
# settling is retried for about 15 s in all, well inside the lease.
SETTLE_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)
# The job that sends again after a lease wakes this much after it ended (arq's clock is the
# worker's, the lease's is PostgreSQL's).
LEASE_MARGIN_SECONDS = 0.5

T = TypeVar("T")


def backoff_seconds(attempt: int, base: float) -> float:
    """Exponential back-off: base, 2·base, 4·base … capped at 15 minutes."""
    return float(min(base * 2 ** min(max(attempt - 1, 0), 32), MAX_BACKOFF_SECONDS))


def send_lease(settings: Settings) -> timedelta:
    """How long a sender holds a message: twice the longest a send may take, so a send that
    timed out has had time to land before anyone sends the message again."""
    longest = settings.TELEGRAM_TIMEOUT_SECONDS + settings.TELEGRAM_SEND_TIMEOUT_SECONDS
    return timedelta(seconds=2 * longest)


async def _write(db: Database, step: Callable[[DeliveryRepository], Awaitable[T]]) -> T:
    """Run one delivery statement, riding out a short database outage."""
    for delay in SETTLE_RETRY_DELAYS:
        try:
            return await _run(db, step)
        except Exception as exc:
            if not is_database_unavailable(exc):
                raise
            await asyncio.sleep(delay)
    return await _run(db, step)


async def _run(db: Database, step: Callable[[DeliveryRepository], Awaitable[T]]) -> T:
    async with db.autocommit_engine.begin() as connection:
        return await step(DeliveryRepository(connection))


async def deliver_notification(ctx: dict[str, Any], notification_id: int) -> str:
    """Send one staff message. Safe to run twice: a message already sent is never resent."""
    db: Database = ctx["db"]
    telegram: TelegramClient = ctx["telegram"]
    settings: Settings = ctx["settings"]
    if pause := telegram.paused_for():
        # Telegram asked every sender to wait (429): waiting costs the message no attempt.
        raise Retry(defer=timedelta(seconds=pause))

    async with db.autocommit_engine.begin() as connection:
        claimed = await DeliveryRepository(connection).claim(
            notification_id,
            lease=send_lease(settings),
            give_up_after=timedelta(hours=settings.NOTIFY_GIVE_UP_HOURS),
        )
    if claimed is None:
        return "not pending"
    try:
        await telegram.send_message(claimed.text)  # no row lock is held here, only the lease
    except TelegramError as exc:
        return await _not_delivered(ctx, claimed, exc)
    await _write(db, lambda repository: repository.mark_sent(notification_id))
    return "sent"


async def _not_delivered(ctx: dict[str, Any], claimed: AnyRow, exc: TelegramError) -> str:
    """Give up on the message (permanent error, or out of time), or raise arq's Retry."""
    db: Database = ctx["db"]
    settings: Settings = ctx["settings"]
    error = str(exc)
    if exc.permanent or claimed.out_of_time:
        await _write(db, lambda repository: repository.mark_failed(claimed.id, error=error))
        logger.error("notification %s FAILED: %s", claimed.id, exc)
        return "failed"
    if exc.uncertain:
        wait = await _write(
            db, lambda repository: repository.retry_after_lease(claimed.id, error=error)
        )
        delay = wait + LEASE_MARGIN_SECONDS
    else:
        delay = exc.retry_after or backoff_seconds(
            claimed.attempts + 1, settings.NOTIFY_BACKOFF_SECONDS
        )
        await _write(
            db,
            lambda repository: repository.schedule_retry(
                claimed.id,
                delay=timedelta(seconds=delay),
                error=error,
                counted=exc.retry_after is None,
            ),
        )
    logger.warning("notification %s not delivered, retrying in %.1f s: %s", claimed.id, delay, exc)
    raise Retry(defer=timedelta(seconds=delay)) from exc


async def relay_notifications(ctx: dict[str, Any]) -> int:
    """Re-enqueue pending messages whose job was lost; arq drops ids already queued."""
    async with UnitOfWork(ctx["db"]).write() as session:
        due = await NotificationRepository(session).due_for_relay(limit=RELAY_BATCH)
        for notification_id in due:
            await ctx["redis"].enqueue_job(
                jobs.DELIVER, notification_id, _job_id=jobs.delivery_job_id(notification_id)
            )
    if due:
        logger.info("relayed %d pending notification(s)", len(due))
    return len(due)
