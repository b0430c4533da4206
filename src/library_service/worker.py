"""arq worker: staff notifications, the daily overdue report and the Stripe polls.

Start it with `library-service worker`.
"""

from __future__ import annotations

import logging
from typing import Any

from arq import cron, func

from library_service.core import idempotency
from library_service.core.config import Settings
from library_service.core.db import Database
from library_service.core.metrics import count_jobs
from library_service.core.queue import redis_settings
from library_service.holds import jobs as hold_jobs
from library_service.holds.tasks import expire_uncollected_holds
from library_service.notifications import jobs as notification_jobs
from library_service.notifications.tasks import (
    deliver_notification,
    relay_notifications,
    send_overdue_report,
)
from library_service.notifications.telegram import TelegramClient
from library_service.payments import jobs as payment_jobs
from library_service.payments.stripe_client import StripeGateway
from library_service.payments.tasks import (
    attach_missing_session,
    attach_missing_sessions,
    poll_expired_sessions,
)

logger = logging.getLogger(__name__)

FUNCTIONS = [
    # Retries are counted in the notification row (NOTIFY_MAX_ATTEMPTS), not by arq; no
    # result is kept, so the sweep may queue the same job id again later.
    func(deliver_notification, name=notification_jobs.DELIVER, max_tries=1000, keep_result=0),
    func(attach_missing_session, name=payment_jobs.ATTACH_SESSION, max_tries=3, keep_result=0),
]


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    # Jobs run at most `max_jobs` (10) at a time: a small pool is enough.
    ctx["db"] = Database.connect(settings.DATABASE_URL, settings, pool_size=10)
    ctx["stripe"] = StripeGateway(settings)
    ctx["telegram"] = TelegramClient(settings)
    if not ctx["telegram"].configured:
        logger.info("TELEGRAM_BOT_TOKEN/TELEGRAM_CHAT_ID unset: staff messages go to this log")


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["telegram"].close()
    await ctx["stripe"].close()
    await ctx["db"].dispose()


def worker_settings(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `arq.Worker`: functions, cron jobs, connections."""
    report_at = settings.OVERDUE_REPORT_TIME
    arq_settings = {
        "functions": FUNCTIONS,
        "cron_jobs": [
            cron(relay_notifications, name=notification_jobs.RELAY, second=30, unique=True),
            cron(
                poll_expired_sessions,
                name=payment_jobs.POLL_EXPIRED_SESSIONS,
                second=0,
                unique=True,
            ),
            cron(
                expire_uncollected_holds,
                name=hold_jobs.EXPIRE_UNCOLLECTED,
                second=45,
                unique=True,
            ),
            cron(
                attach_missing_sessions,
                name=payment_jobs.ATTACH_MISSING_SESSIONS,
                second=15,
                unique=True,
            ),
            # Also at startup: a worker that was down at report time still sends today's
            # report (the job skips it before the report time and once it was sent).
            cron(
                send_overdue_report,
                name=notification_jobs.OVERDUE_REPORT,
                hour=report_at.hour,
                minute=report_at.minute,
                second=report_at.second,
                run_at_startup=True,
                unique=True,
            ),
            cron(
                idempotency.purge_expired_keys,
                name=idempotency.PURGE_EXPIRED,
                minute=50,
                second=50,
                unique=True,
            ),
        ],
        "on_startup": startup,
        "on_shutdown": shutdown,
        "ctx": {"settings": settings},
        "redis_settings": redis_settings(settings.REDIS_URL),
        "timezone": settings.timezone,
        "job_timeout": 120,
        "max_jobs": 10,
        # Graceful shutdown: on SIGTERM stop taking jobs, let running ones finish (30 s).
        "job_completion_wait": 30,
    }
    return count_jobs(arq_settings)  # each job counts its runs and failures for /metrics
