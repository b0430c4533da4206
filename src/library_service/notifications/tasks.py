"""Notification jobs: deliver one message, sweep up lost deliveries, the daily overdue report."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import quote

from arq import Retry

from library_service.core.config import Settings
from library_service.core.db import AnyRow, Database, UnitOfWork
from library_service.core.outages import is_database_unavailable
from library_service.notifications import jobs, notices
from library_service.notifications.mailer import Email, Mailer, MailError, render
from library_service.notifications.notice_repository import (
    NoticeDeliveryRepository,
    NoticeRepository,
)
from library_service.notifications.notices import unseal
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
    """Re-enqueue pending staff messages and member notices whose job was lost (or whose
    retry is due); arq drops ids already queued."""
    async with UnitOfWork(ctx["db"]).write() as session:
        due = await NotificationRepository(session).due_for_relay(limit=RELAY_BATCH)
        for notification_id in due:
            await ctx["redis"].enqueue_job(
                jobs.DELIVER, notification_id, _job_id=jobs.delivery_job_id(notification_id)
            )
        notices_due = await NoticeRepository(session).due_for_relay(limit=RELAY_BATCH)
        for notice_id in notices_due:
            await ctx["redis"].enqueue_job(
                jobs.DELIVER_NOTICE, notice_id, _job_id=jobs.notice_job_id(notice_id)
            )
    if due or notices_due:
        logger.info(
            "relayed %d staff message(s) and %d member notice(s)", len(due), len(notices_due)
        )
    return len(due) + len(notices_due)


# -- member notices by e-mail -----------------------------------------------------------------


NO_SMTP = "not e-mailed: SMTP_HOST is not set"


def mail_lease(settings: Settings) -> timedelta:
    """How long a sender holds a notice: twice the longest an SMTP exchange may take."""
    return timedelta(seconds=2 * settings.SMTP_TIMEOUT_SECONDS)


async def _settle(db: Database, step: Callable[[NoticeDeliveryRepository], Awaitable[T]]) -> T:
    """Run one settling statement, riding out a short database outage."""

    async def run() -> T:
        async with db.autocommit_engine.begin() as connection:
            return await step(NoticeDeliveryRepository(connection))

    for delay in SETTLE_RETRY_DELAYS:
        try:
            return await run()
        except Exception as exc:
            if not is_database_unavailable(exc):
                raise
            await asyncio.sleep(delay)
    return await run()


def _email(claimed: AnyRow, settings: Settings) -> Email | None:
    """The e-mail of a claimed notice; None if its link's token cannot be made any more."""
    link = notices.resolve_link(claimed.link_path, claimed.frontend_path, settings)
    if link is not None and notices.TOKEN in link:
        token = unseal(claimed.secret, settings.SECRET_KEY) if claimed.secret else None
        if token is None:
            return None
        link = link.replace(notices.TOKEN, quote(token, safe=""))
    return Email(
        notice_id=claimed.id,
        to=claimed.to_address,
        subject=claimed.subject,
        body=claimed.body,
        facts=claimed.facts,
        link=link,
        link_label=claimed.link_label,
    )


async def deliver_member_notices(ctx: dict[str, Any], notice_ids: list[int]) -> int:
    """E-mail a sweep's batch of notices, one after the other; one that must wait is retried
    by the minute sweep (its next attempt is recorded). How many were sent."""
    sent = 0
    for notice_id in notice_ids:
        try:
            sent += await deliver_member_notice(ctx, notice_id) == "sent"
        except Retry:
            continue
    return sent


async def deliver_member_notice(ctx: dict[str, Any], notice_id: int) -> str:
    """E-mail one member notice. Safe to run twice: a notice sent is never sent again."""
    db: Database = ctx["db"]
    mailer: Mailer = ctx["mailer"]
    settings: Settings = ctx["settings"]
    async with db.autocommit_engine.begin() as connection:
        claimed = await NoticeDeliveryRepository(connection).claim(
            notice_id,
            lease=mail_lease(settings),
            give_up_after=timedelta(hours=settings.NOTIFY_GIVE_UP_HOURS),
        )
    if claimed is None:
        return "not pending"
    email = _email(claimed, settings)
    if email is None:
        error = "the link's token cannot be decrypted (SECRET_KEY changed?)"
        await _settle(db, lambda repository: repository.mark_failed(notice_id, error=error))
        return "failed"
    if not mailer.configured:
        # No SMTP server (and not the local run, which starts its own): the log has the
        # e-mail's subject, and the notice says it was not e-mailed, and why.
        logger.info("notice %s not e-mailed (no SMTP_HOST): %s", notice_id, email.subject)
        await _settle(db, lambda repository: repository.mark_not_emailed(notice_id, NO_SMTP))
        return "not e-mailed"
    try:
        await mailer.send(render(email, settings))  # no row lock held, only the lease
    except MailError as exc:
        error = str(exc)
        if exc.permanent or claimed.out_of_time:
            await _settle(db, lambda repository: repository.mark_failed(notice_id, error=error))
            logger.error("notice %s FAILED: %s", notice_id, error)
            return "failed"
        delay = backoff_seconds(claimed.attempts + 1, settings.NOTIFY_BACKOFF_SECONDS)
        await _settle(
            db,
            lambda repository: repository.schedule_retry(
                notice_id, delay=timedelta(seconds=delay), error=error
            ),
        )
        logger.warning("notice %s not sent, retrying in %.1f s: %s", notice_id, delay, error)
        raise Retry(defer=timedelta(seconds=delay)) from exc
    await _settle(db, lambda repository: repository.mark_sent(notice_id))
    return "sent"
