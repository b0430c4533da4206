"""Notification jobs: deliver one message, sweep up lost deliveries, the daily overdue report."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from arq import Retry

from library_service.core import clock
from library_service.core.db import Database, UnitOfWork
from library_service.notifications import jobs, messages
from library_service.notifications.repository import DeliveryRepository, NotificationRepository
from library_service.notifications.service import NotificationService
from library_service.notifications.telegram import TelegramClient, TelegramError

logger = logging.getLogger(__name__)

# Longer than a send can take (Telegram's timeout); a crashed sender's lease runs out after it.
SEND_LEASE_SECONDS = 60
MAX_BACKOFF_SECONDS = 15 * 60
RELAY_BATCH = 500


def backoff_seconds(attempt: int, base: float) -> float:
    """Exponential back-off: base, 2·base, 4·base … capped at 15 minutes."""
    return float(min(base * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS))


async def deliver_notification(ctx: dict[str, Any], notification_id: int) -> str:
    """Send one staff message. Safe to run twice: a message already sent is never resent."""
    db: Database = ctx["db"]
    telegram: TelegramClient = ctx["telegram"]
    settings = ctx["settings"]

    # Each step is one statement: no transaction needed around it.
    async with db.autocommit_engine.connect() as connection:
        claimed = await DeliveryRepository(connection).claim(
            notification_id, lease_seconds=SEND_LEASE_SECONDS
        )
    if claimed is None:
        return "not pending"

    try:
        await telegram.send_message(claimed.text)  # no row lock is held here, only the lease
    except TelegramError as exc:
        async with db.autocommit_engine.connect() as connection:
            repository = DeliveryRepository(connection)
            if exc.permanent or claimed.attempts >= settings.NOTIFY_MAX_ATTEMPTS:
                await repository.mark_failed(notification_id, error=str(exc))
                logger.error(
                    "notification %s FAILED after %s attempt(s): %s",
                    notification_id,
                    claimed.attempts,
                    exc,
                )
                return "failed"
            delay = exc.retry_after or backoff_seconds(
                claimed.attempts, settings.NOTIFY_BACKOFF_SECONDS
            )
            await repository.schedule_retry(notification_id, delay=delay, error=str(exc))
        logger.warning(
            "notification %s not delivered (attempt %s), retrying in %.1f s: %s",
            notification_id,
            claimed.attempts,
            delay,
            exc,
        )
        raise Retry(defer=timedelta(seconds=delay)) from exc

    async with db.autocommit_engine.connect() as connection:
        await DeliveryRepository(connection).mark_sent(notification_id)
    return "sent"


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


async def send_overdue_report(ctx: dict[str, Any]) -> str:
    """One message per active borrowing due tomorrow or earlier; once per library day."""
    settings = ctx["settings"]
    today = clock.today(settings.timezone)
    if clock.now().astimezone(settings.timezone).time() < settings.OVERDUE_REPORT_TIME:
        return "too early"  # started before the report time: the cron will run it
    async with UnitOfWork(ctx["db"], ctx["redis"]).write() as session:
        repository = NotificationRepository(session)
        if not await repository.start_overdue_report(today):
            return "already sent"
        notifications = NotificationService(session)
        due = await repository.borrowings_due_by(today + timedelta(days=1))
        for row in due:
            await notifications.record(
                "overdue",
                messages.overdue_borrowing(
                    borrowing_id=row.id,
                    email=row.email,
                    title=row.title,
                    author=row.author,
                    expected_return_date=row.expected_return_date,
                    today=today,
                ),
            )
        if not due:
            await notifications.record("overdue", messages.NO_OVERDUE)
        await repository.finish_overdue_report(today, len(due))
    logger.info("overdue report for %s: %d borrowing(s)", today, len(due))
    return f"{len(due)} borrowing(s)"
