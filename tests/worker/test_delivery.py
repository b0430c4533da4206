"""Staff messages against a Telegram that rate-limits or answers slowly, over real HTTP: a
pause Telegram asks for never fails a message, a slow answer is waited for, and a send whose
outcome is unknown is not repeated before its lease runs out (at-least-once, documented)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from arq import Retry
from arq.worker import Worker
from sqlalchemy import select

from library_service.core.config import Settings
from library_service.core.db import Database
from library_service.models import Notification
from library_service.notifications.tasks import deliver_notification, relay_notifications
from library_service.notifications.telegram import TelegramClient
from library_service.worker import worker_settings
from tests.worker.conftest import FakeTelegram, eventually, record

pytestmark = [pytest.mark.slow, pytest.mark.waits]


async def run_worker_until_idle(config: Settings) -> None:
    """The worker in burst mode (no crons), polling often, until its queue is empty."""
    options = worker_settings(config)
    options["cron_jobs"] = []
    worker = Worker(**options, burst=True, handle_signals=False, poll_delay=0.01)
    try:
        await worker.async_run()
    finally:
        await worker.close()


async def rows(db: Database) -> list[Any]:
    async with db.autocommit_sessionmaker() as session:
        statement = select(Notification).order_by(Notification.id)
        return list((await session.scalars(statement)).all())


async def test_a_rate_limit_longer_than_any_attempt_count_fails_no_message(
    worker_config, db, fake_telegram: FakeTelegram
):
    """Telegram answers 429 for a while (short pauses, as under a burst): every message
    waits it out and is delivered once, however many pauses it met."""
    texts = [f"message {number}" for number in range(30)]
    fake_telegram.limit(1.5, retry_after=0.1)  # about 15 pauses: more than 8 attempts
    await record(db, worker_config.REDIS_URL, texts)
    await run_worker_until_idle(worker_config)

    assert {row.status for row in await rows(db)} == {"SENT"}
    assert sorted(fake_telegram.delivered) == sorted(texts)
    # The pause holds for every sender: while it lasts nothing is sent, so the 429s stay
    # near one round of the jobs in flight (10) per pause, not one per message per pause.
    assert fake_telegram.rate_limited <= (1.5 / 0.1 + 1) * 10


async def test_a_slow_telegram_gets_each_message_once(worker_config, db, fake_telegram):
    """Telegram answering after 0.6 s, slower than connecting may take (0.3 s here, 5 s by
    default): the answer is waited for, so nothing is sent twice."""
    config = worker_config.model_copy(update={"TELEGRAM_TIMEOUT_SECONDS": 0.3})
    fake_telegram.delay = 0.6
    texts = [f"slow {number}" for number in range(10)]  # one round of the jobs in flight
    await record(db, config.REDIS_URL, texts)
    await run_worker_until_idle(config)

    assert sorted(fake_telegram.delivered) == sorted(texts)
    assert [(row.status, row.attempts) for row in await rows(db)] == [("SENT", 1)] * 10


@pytest.fixture
def short_lease(worker_config: Settings) -> Settings:
    """Connect 0.2 s + send 0.3 s: the lease is twice that, one second."""
    return worker_config.model_copy(
        update={"TELEGRAM_TIMEOUT_SECONDS": 0.2, "TELEGRAM_SEND_TIMEOUT_SECONDS": 0.3}
    )


async def arrived(fake: FakeTelegram, count: int) -> bool:
    return len(fake.delivered) >= count


def job_context(config: Settings, db: Database, queue: Any) -> dict[str, Any]:
    return {"db": db, "settings": config, "telegram": TelegramClient(config), "redis": queue}


async def test_a_send_that_timed_out_is_not_repeated_within_its_lease(
    short_lease, db, app, fake_telegram
):
    fake_telegram.delay = 0.6  # longer than the send timeout: the outcome is unknown
    [notification_id] = await record(db, short_lease.REDIS_URL, ["slow"])
    ctx = job_context(short_lease, db, app.state.queue)
    started = time.monotonic()

    with pytest.raises(Retry) as retry:
        await deliver_notification(ctx, notification_id)
    # The retry waits for the lease to end (1 s after the claim), not just the back-off.
    assert 0.5 < (retry.value.defer_score or 0) / 1000 <= 1.5
    [row] = await rows(db)
    assert row.status == "PENDING" and row.attempts == 1 and "ReadTimeout" in row.last_error
    assert row.locked_until is not None and row.next_attempt_at == row.locked_until

    # Within the lease neither the job nor the sweep sends it again.
    assert await deliver_notification(ctx, notification_id) == "not pending"
    assert await relay_notifications(ctx) == 0
    assert fake_telegram.delivered == ["slow"]

    # Once it ran out, it is sent again: the copy the timeout may cost (at-least-once).
    fake_telegram.delay = 0
    await asyncio.sleep(max(0.0, started + 1.1 - time.monotonic()))
    assert await deliver_notification(ctx, notification_id) == "sent"
    assert fake_telegram.delivered == ["slow", "slow"]
    await ctx["telegram"].close()


async def test_sends_cut_off_by_a_killed_worker_are_sent_again_after_the_lease(
    short_lease, db, app, fake_telegram
):
    """A worker killed mid-send leaves its messages leased: the sweep sends them again once
    the lease ran out, never earlier."""
    fake_telegram.delay = 5
    ids = await record(db, short_lease.REDIS_URL, ["cut 1", "cut 2", "cut 3"])
    ctx = job_context(short_lease, db, app.state.queue)
    sends = [asyncio.create_task(deliver_notification(ctx, each)) for each in ids]
    await eventually(lambda: arrived(fake_telegram, 3), what="three sends in flight")
    for send in sends:  # what a SIGKILL does to them, as far as the database can tell
        send.cancel()
    await asyncio.gather(*sends, return_exceptions=True)

    assert await relay_notifications(ctx) == 0  # still leased
    await asyncio.sleep(1.1)
    assert await relay_notifications(ctx) == 3
    fake_telegram.delay = 0
    assert [await deliver_notification(ctx, each) for each in ids] == ["sent"] * 3
    assert sorted(fake_telegram.delivered) == sorted(["cut 1", "cut 2", "cut 3"] * 2)
    await ctx["telegram"].close()
