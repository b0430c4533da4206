"""arq worker: staff notifications, the daily overdue report and the Stripe polls.

Start it with `library-service worker` (see supervisor.py for how it stays up).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from arq import Retry, cron, func
from arq.typing import WorkerCoroutine
from sqlalchemy import event

from library_service.borrowings.reminders import send_reminders
from library_service.borrowings.report import send_overdue_report
from library_service.core.config import Settings
from library_service.core.db import Database
from library_service.core.outages import Outage, is_database_unavailable, retry_delay
from library_service.core.queue import redis_settings
from library_service.holds import jobs as hold_jobs
from library_service.holds.tasks import expire_uncollected_holds
from library_service.notifications import jobs as notification_jobs
from library_service.notifications.mailer import Mailer
from library_service.notifications.tasks import (
    deliver_member_notice,
    deliver_member_notices,
    deliver_notification,
    relay_notifications,
)
from library_service.notifications.telegram import TelegramClient
from library_service.payments import jobs as payment_jobs
from library_service.payments.stripe_client import StripeGateway
from library_service.payments.tasks import (
    attach_missing_session,
    attach_missing_sessions,
    poll_expired_sessions,
)
from library_service.services import Services
from library_service.web import idempotency
from library_service.web.metrics import count_jobs

logger = logging.getLogger(__name__)

Job = Callable[..., Awaitable[Any]]
# Graceful shutdown: on SIGTERM stop taking jobs, let running ones finish for this long.
JOB_COMPLETION_WAIT_SECONDS = 30
DATABASE_UNAVAILABLE = "database unavailable"


def _riding_out_database_outages(job: Job, *, retry: bool) -> WorkerCoroutine:
    """A database outage is not the job's failure: it is logged once (not per job, and not
    again until a connection is handed out again, see `startup`), and the job is retried
    with back-off (`retry`) or left to its next scheduled run."""

    @functools.wraps(job)
    async def run(ctx: dict[Any, Any], *args: Any, **kwargs: Any) -> Any:
        outage: Outage = ctx["database_outage"]
        _provide_services(ctx)
        try:
            result = await job(ctx, *args, **kwargs)
        except Exception as exc:
            if not is_database_unavailable(exc):
                raise
            outage.down(exc)
            if not retry:
                return DATABASE_UNAVAILABLE
            delay = retry_delay(ctx["job_try"], ctx["settings"].WORKER_RETRY_MAX_SECONDS)
            raise Retry(defer=timedelta(seconds=delay)) from exc
        return result

    return run


def _provide_services(ctx: dict[Any, Any]) -> None:
    """The jobs' services (the composition root), over the Redis connection of the arq
    Worker running them: the supervisor starts a new one, with a new connection, after an
    outage."""
    services: Services | None = ctx.get("services")
    if services is None or services.queue is not ctx["redis"]:
        ctx["services"] = Services(ctx["settings"], ctx["db"], ctx["redis"], ctx["stripe"])


def _job(job: Job) -> WorkerCoroutine:
    return _riding_out_database_outages(job, retry=True)


def _cron(job: Job) -> WorkerCoroutine:
    run = _riding_out_database_outages(job, retry=False)

    @functools.wraps(run)
    async def logged(ctx: dict[Any, Any]) -> Any:
        # Which worker ran which slot (the job id names the slot): arq logs only the name.
        logger.info("cron slot %s started", ctx.get("job_id"))
        result = await run(ctx)
        logger.info("cron slot %s finished", ctx.get("job_id"))
        return result

    return logged


FUNCTIONS = [
    # A message is given up by age (NOTIFY_GIVE_UP_HOURS, see the task), not by arq's count;
    # no result is kept, so the sweep may queue the same job id again later.
    func(
        _job(deliver_notification),
        name=notification_jobs.DELIVER,
        max_tries=1000,
        keep_result=0,
    ),
    func(
        _job(deliver_member_notice),
        name=notification_jobs.DELIVER_NOTICE,
        max_tries=1000,
        keep_result=0,
    ),
    # No timeout of its own: arq keeps every job's in-progress mark for the longest timeout
    # of all functions (+10 s), so one long timeout here would hold a dead worker's staff
    # messages for as long. A batch that overruns the job timeout is run again, and sends
    # only what is still unsent.
    func(
        _job(deliver_member_notices),
        name=notification_jobs.DELIVER_NOTICES,
        max_tries=3,
        keep_result=0,
    ),
    func(
        _job(attach_missing_session),
        name=payment_jobs.ATTACH_SESSION,
        max_tries=3,
        keep_result=0,
    ),
]


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    # Jobs run at most `max_jobs` (10) at a time: a small pool is enough.
    ctx["db"] = Database.connect(settings.DATABASE_URL, settings, pool_size=10)
    ctx["database_outage"] = outage = Outage("PostgreSQL")
    # The outage is over once a connection is handed out again: a job that ends without
    # touching the database (a report before its time) says nothing about it.
    event.listen(ctx["db"].engine.sync_engine.pool, "checkout", lambda *_: outage.up())
    ctx["stripe"] = StripeGateway(settings)
    ctx["telegram"] = TelegramClient(settings)
    if not ctx["telegram"].configured:
        logger.info("TELEGRAM_BOT_TOKEN/TELEGRAM_CHAT_ID unset: staff messages go to this log")
    ctx["mailer"] = Mailer(settings)
    if not ctx["mailer"].configured:
        logger.warning("SMTP_HOST unset: member notices stay in the app, none is e-mailed")


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["telegram"].close()
    await ctx["mailer"].close()
    await ctx["stripe"].close()
    await ctx["db"].dispose()


def _cron_jobs(settings: Settings) -> list[Any]:
    def _scheduled(job: Job, name: str, *, at_startup: bool = False, **when: Any) -> Any:
        """A cron job that runs once per slot however many workers there are: arq names
        each slot's job after the job and the slot's time, and queues a name once.
        `when`: arq's fields; WORKER_CRON_EVERY_SECONDS (tests) replaces them."""
        if every := settings.WORKER_CRON_EVERY_SECONDS:
            when = {"second": set(range(0, 60, every))}
        return cron(_cron(job), name=name, run_at_startup=at_startup, unique=True, **when)

    report_at = settings.OVERDUE_REPORT_TIME
    remind_at = settings.REMINDER_TIME
    return [
        # The sweeps also run as soon as a worker (re)connects to Redis: after an outage
        # the queue may have lost jobs, and messages recorded meanwhile go out at once.
        _scheduled(relay_notifications, notification_jobs.RELAY, second=30, at_startup=True),
        _scheduled(
            poll_expired_sessions, payment_jobs.POLL_EXPIRED_SESSIONS, second=0, at_startup=True
        ),
        _scheduled(expire_uncollected_holds, hold_jobs.EXPIRE_UNCOLLECTED, second=45),
        _scheduled(attach_missing_sessions, payment_jobs.ATTACH_MISSING_SESSIONS, second=15),
        # Also at startup: a worker that was down at report time still sends today's
        # report (the job skips it before the report time and once it was sent).
        _scheduled(
            send_overdue_report,
            notification_jobs.OVERDUE_REPORT,
            hour=report_at.hour,
            minute=report_at.minute,
            second=report_at.second,
            at_startup=True,
        ),
        # Also at startup, as the report: the sweep skips before its time and is written once
        # per loan, kind and day however often it runs.
        _scheduled(
            send_reminders,
            notification_jobs.SEND_REMINDERS,
            hour=remind_at.hour,
            minute=remind_at.minute,
            second=remind_at.second,
            at_startup=True,
        ),
        _scheduled(idempotency.purge_expired_keys, idempotency.PURGE_EXPIRED, minute=50, second=50),
    ]


def worker_options(settings: Settings) -> dict[str, Any]:
    """What every arq Worker of this service runs: functions, cron jobs, limits."""
    options = {
        "functions": FUNCTIONS,
        "cron_jobs": _cron_jobs(settings),
        "timezone": settings.timezone,
        "job_timeout": settings.WORKER_JOB_TIMEOUT_SECONDS,
        "max_jobs": 10,
        "job_completion_wait": JOB_COMPLETION_WAIT_SECONDS,
    }
    # Each job counts its runs and failures in Redis for /metrics, when metrics are served.
    return count_jobs(options) if settings.metrics_enabled else options


def worker_settings(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for a plain `arq.Worker`: the options, connections, startup."""
    return {
        **worker_options(settings),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "ctx": {"settings": settings},
        "redis_settings": redis_settings(settings.REDIS_URL),
    }
