"""The worker through Redis and PostgreSQL outages, as `library-service worker` and as the
built-in worker of `library-service run`: nothing is restarted by hand, every message
recorded meanwhile is delivered exactly once, the crons run again, the heartbeat says so."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from library_service.core import clock
from library_service.core.config import Settings
from library_service.core.db import Database
from library_service.core.queue import (
    HEARTBEATS_KEY,
    connect_queue,
    heartbeat_age,
    record_heartbeat,
)
from library_service.dev import local
from library_service.dev.embedded import EmbeddedRedis
from library_service.models import Notification
from library_service.notifications import jobs
from library_service.payments import jobs as payment_jobs
from tests.conftest import ROOT
from tests.worker.conftest import (
    FakeTelegram,
    RestartablePostgres,
    eventually,
    record,
    statuses,
)

pytestmark = [pytest.mark.slow, pytest.mark.waits]

COMMAND = Path(sys.executable).parent / "library-service"
OUTAGE_SECONDS = 1.0  # several reconnection attempts at WORKER_RETRY_MAX_SECONDS (0.2 s)


def worker_environment(config: Settings) -> dict[str, str]:
    """What `library-service worker` reads: the test's database, Redis and fake Telegram."""
    environment = {name: value for name, value in os.environ.items() if name in {"PATH", "HOME"}}
    values = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": config.DATABASE_URL,
        "DATABASE_POOLER": config.DATABASE_POOLER,
        "REDIS_URL": config.REDIS_URL,
        "TELEGRAM_API_BASE": config.TELEGRAM_API_BASE,
        "TELEGRAM_BOT_TOKEN": config.TELEGRAM_BOT_TOKEN,
        "TELEGRAM_CHAT_ID": config.TELEGRAM_CHAT_ID,
        "STRIPE_SECRET_KEY": "sk_test_worker",
        "STRIPE_API_BASE": "http://127.0.0.1:9",  # no payments here: never called
        "WORKER_RETRY_MAX_SECONDS": str(config.WORKER_RETRY_MAX_SECONDS),
        "WORKER_HEARTBEAT_SECONDS": str(config.WORKER_HEARTBEAT_SECONDS),
        "NOTIFY_BACKOFF_SECONDS": "0",
        "LOG_JSON": "false",
    }
    return environment | values


async def heartbeat_is_fresh(redis_url: str) -> bool:
    queue = connect_queue(redis_url)
    try:
        age = await heartbeat_age(queue)
    except Exception:
        return False
    finally:
        await queue.aclose()
    return age is not None and age < 1


async def delivered_exactly_once(fake: FakeTelegram, db: Database, texts: list[str]) -> bool:
    """Every recorded message reached the chat once (the daily report, which the worker
    writes at its start after the report time, among them)."""
    recorded = await statuses(db)
    return set(texts) <= recorded.keys() and sorted(fake.delivered) == sorted(recorded)


async def all_sent(db: Database) -> bool:
    return set((await statuses(db)).values()) == {"SENT"}


async def check_worker(environment: dict[str, str], cwd: Path) -> tuple[int, str]:
    """`library-service worker --check`: its exit status and what it printed."""
    check = await asyncio.create_subprocess_exec(
        COMMAND, "worker", "--check", env=environment, cwd=cwd, stdout=asyncio.subprocess.PIPE
    )
    output, _ = await check.communicate()
    return await check.wait(), output.decode()


async def test_worker_command_rides_out_a_redis_outage(
    worker_config, db, own_redis: EmbeddedRedis, fake_telegram: FakeTelegram, tmp_path
):
    environment = worker_environment(worker_config)
    log = tmp_path / "worker.log"
    with log.open("w") as output:
        worker = await asyncio.create_subprocess_exec(
            COMMAND, "worker", env=environment, cwd=tmp_path, stdout=output, stderr=output
        )
    try:
        await eventually(lambda: heartbeat_is_fresh(own_redis.url), what="first heartbeat")
        texts = ["before the outage"]
        await record(db, own_redis.url, texts)
        await eventually(lambda: all_sent(db), what="the first message")

        own_redis.stop()
        during = [f"during the outage {number}" for number in range(20)]
        await record(db, own_redis.url, during)  # the enqueue fails: the outbox keeps them
        await asyncio.sleep(OUTAGE_SECONDS)
        assert worker.returncode is None, log.read_text()

        own_redis.start()  # empty: the jobs queued before the outage are gone too
        await eventually(lambda: all_sent(db), what="the messages recorded meanwhile")
        assert await delivered_exactly_once(fake_telegram, db, texts + during)
        await eventually(lambda: heartbeat_is_fresh(own_redis.url), what="heartbeat again")
        assert (await check_worker(environment, tmp_path))[0] == 0
    finally:
        if worker.returncode is None:
            worker.send_signal(signal.SIGTERM)
        await asyncio.wait_for(worker.wait(), 40)
    output = log.read_text()
    assert worker.returncode == 0, output
    assert output.count("Redis unavailable") == 1, output  # once, not per attempt
    assert output.count("Redis is back") == 1, output
    # A worker that stopped on purpose leaves no heartbeat to look fresh for a while.
    status, printed = await check_worker(environment, tmp_path)
    assert status == 1 and "no worker heartbeat" in printed


async def test_builtin_worker_of_run_rides_out_a_redis_outage(
    worker_config, db, own_redis, fake_telegram, client, factory, sandbox, caplog
):
    """Messages, the Stripe expiry poll and the relay all resume after the outage."""
    member = await factory.user()
    book = await factory.book()
    borrowed = await client.post(
        "/api/borrowings/",
        json={"book": book.id, "expected_return_date": str(a_week_from(worker_config))},
        headers=factory.auth(member),
    )
    assert borrowed.status_code == 201, borrowed.text
    payment = borrowed.json()["payments"][0]
    caplog.set_level(logging.INFO)
    with ExitStack() as stack:
        local.start_worker_thread(stack, worker_config)
        await eventually(lambda: all_sent(db), what="the borrowing's message")

        own_redis.stop()
        during = [f"during the outage {number}" for number in range(10)]
        await record(db, own_redis.url, during)
        sandbox.mark_expired(payment["session_id"])
        await asyncio.sleep(OUTAGE_SECONDS)
        own_redis.start()

        await eventually(lambda: all_sent(db), what="the messages recorded meanwhile")
        await eventually(lambda: payment_status(db, payment["id"], "EXPIRED"), what="the poll")
        await eventually(lambda: heartbeat_is_fresh(own_redis.url), what="heartbeat again")
    assert await delivered_exactly_once(fake_telegram, db, during)
    assert caplog.text.count("Redis unavailable") == 1
    assert "Exception in thread" not in caplog.text


def a_week_from(config: Settings) -> date:
    return clock.today(config.timezone) + timedelta(days=7)


async def payment_status(db: Database, payment_id: int, status: str) -> bool:
    async with db.autocommit_sessionmaker() as session:
        current = await session.scalar(
            text("SELECT status FROM payments WHERE id = :id"), {"id": payment_id}
        )
    return bool(current == status)


async def test_builtin_worker_is_restarted_when_it_stops(
    worker_config, db, own_redis, fake_telegram, monkeypatch, caplog
):
    """Whatever stops the worker (here its start-up failing once), `run` starts it again."""
    from library_service import worker as worker_module
    from library_service.notifications.telegram import TelegramClient

    failures = [RuntimeError("the bot's client could not start")]

    def flaky_client(settings: Settings) -> TelegramClient:
        if failures:
            raise failures.pop()
        return TelegramClient(settings)

    monkeypatch.setattr(worker_module, "TelegramClient", flaky_client)
    with ExitStack() as stack:
        thread = local.start_worker_thread(stack, worker_config)
        texts = ["after the restart"]
        await record(db, own_redis.url, texts)
        await eventually(lambda: all_sent(db), what="a message, once the worker is back")
    assert thread.restarts == 1
    assert "the worker stopped; restarting it" in caplog.text
    assert await delivered_exactly_once(fake_telegram, db, texts)


async def test_worker_rides_out_a_postgres_restart(
    worker_config,
    worker_postgres: RestartablePostgres,
    worker_postgres_db: Database,
    own_redis,
    fake_telegram,
    caplog,
):
    """Deliveries that meet a stopped database are retried with back-off, not dropped until
    the next sweep; the worker's heartbeat never stops."""
    config = worker_config.model_copy(update={"DATABASE_URL": worker_postgres.database_url})
    caplog.set_level(logging.INFO)
    with ExitStack() as stack:
        local.start_worker_thread(stack, config)
        await eventually(lambda: heartbeat_is_fresh(own_redis.url), what="first heartbeat")
        # On a busy machine the sweeps of the worker's start may come late; met by the
        # outage, one that skips the database ("too early" for the report) would log it over.
        await eventually(lambda: startup_sweeps_done(caplog.text), what="the start's sweeps")
        texts = [f"message {number}" for number in range(5)]
        ids = await insert_without_queueing(worker_postgres_db, texts)

        worker_postgres.stop()
        try:
            queue = connect_queue(own_redis.url)
            for notification_id in ids:
                await queue.enqueue_job(
                    jobs.DELIVER, notification_id, _job_id=jobs.delivery_job_id(notification_id)
                )
            await queue.aclose()
            await asyncio.sleep(OUTAGE_SECONDS)
            assert await heartbeat_is_fresh(own_redis.url)  # the worker lives on
        finally:
            worker_postgres.start()

        await eventually(lambda: all_sent(worker_postgres_db), within=10, what="deliveries")
    assert await delivered_exactly_once(fake_telegram, worker_postgres_db, texts)
    assert caplog.text.count("PostgreSQL unavailable") == 1
    assert caplog.text.count("PostgreSQL is back") == 1


async def startup_sweeps_done(log: str) -> bool:
    """arq logs `← <job>` when a job ends: the sweeps run at a worker's start have."""
    sweeps = (jobs.RELAY, jobs.OVERDUE_REPORT, payment_jobs.POLL_EXPIRED_SESSIONS)
    return all(f"← {name}" in log for name in sweeps)


async def insert_without_queueing(db: Database, texts: list[str]) -> list[int]:
    async with db.sessionmaker() as session, session.begin():
        rows = [Notification(kind="test", text=message) for message in texts]
        session.add_all(rows)
        await session.flush()
        return [row.id for row in rows]


async def test_ready_reports_the_workers_heartbeat(client, app, settings):
    queue = app.state.queue
    answer = await client.get("/ready")
    assert answer.status_code == 200  # the API serves without a worker
    assert "worker" not in answer.json()
    answer = await client.get("/ready", params={"worker": "true"})
    assert answer.status_code == 503
    assert answer.json() == {
        "status": "unavailable",
        "database": "ok",
        "redis": "ok",
        "worker": "unavailable: no worker heartbeat",
    }

    await record_heartbeat(queue, "host-a:1")
    answer = await client.get("/ready", params={"worker": "true"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["worker"] == "ok"

    # Three beats missed: stale.
    seconds, _ = await queue.time()
    stale_at = seconds - 4 * settings.WORKER_HEARTBEAT_SECONDS
    await queue.zadd(HEARTBEATS_KEY, {"host-a:1": stale_at})
    answer = await client.get("/ready", params={"worker": "1"})
    assert answer.status_code == 503
    assert answer.json()["worker"].startswith("unavailable: last worker heartbeat 4")
    assert answer.json()["database"] == "ok" and answer.json()["redis"] == "ok"


def test_compose_checks_the_worker_by_its_heartbeat():
    """The image's health check asks the API's port, which the worker does not serve."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    check = compose["services"]["worker"]["healthcheck"]["test"]
    assert check == ["CMD", "library-service", "worker", "--check"]
