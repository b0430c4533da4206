"""Fixtures for the worker's faults: a Redis and a PostgreSQL of the test's own (stopping the
suite's would hurt other tests), and a fake Telegram served on loopback, so that the real
HTTP client meets real timeouts (respx answers in-process, where no timeout ever fires)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import respx
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from library_service.core.config import Settings
from library_service.core.db import Database, UnitOfWork
from library_service.core.queue import connect_queue
from library_service.dev.embedded import EmbeddedRedis, free_port
from library_service.dev.local import serve_in_thread
from library_service.models import Notification
from library_service.notifications.service import NotificationService
from tests.servers import RestartablePostgres, data_folder

TELEGRAM_TOKEN = "123:worker-test"


class FakeTelegram:
    """sendMessage on loopback: counts what arrives, can answer slowly or with 429."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = Starlette(
            routes=[Route("/bot{token}/sendMessage", self._send, methods=["POST"])]
        )
        self.reset()

    def reset(self) -> None:
        self.delivered: list[str] = []  # every message that reached the chat, duplicates too
        self.rate_limited = 0  # 429 answers given
        self.delay = 0.0  # seconds before answering (after the message arrived)
        self.limited_until = 0.0  # time.monotonic() until which every send gets a 429
        self.retry_after = 1.0

    def limit(self, seconds: float, *, retry_after: float) -> None:
        self.limited_until = time.monotonic() + seconds
        self.retry_after = retry_after

    async def _send(self, request: Request) -> JSONResponse:
        body = await request.json()
        if time.monotonic() < self.limited_until:
            self.rate_limited += 1
            return JSONResponse(
                {
                    "ok": False,
                    "error_code": 429,
                    "description": "Too Many Requests",
                    "parameters": {"retry_after": self.retry_after},
                },
                status_code=429,
            )
        self.delivered.append(body["text"])
        for _ in range(round(self.delay * 100)):
            if not self.delay:  # a test cut the delay short
                break
            await asyncio.sleep(0.01)
        return JSONResponse({"ok": True, "result": {}})


@pytest.fixture(scope="session")
def telegram_server() -> Iterator[FakeTelegram]:
    fake = FakeTelegram()
    stop = serve_in_thread(fake.app, fake.port, name="fake-telegram")
    yield fake
    stop()


@pytest.fixture
def fake_telegram(telegram_server: FakeTelegram, stripe_mock: respx.MockRouter) -> FakeTelegram:
    """The fake Telegram, reached over real HTTP past respx (which keeps faking Stripe)."""
    telegram_server.reset()
    stripe_mock.route(host="127.0.0.1", port=telegram_server.port).pass_through()
    return telegram_server


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A Redis to stop and start again (on the same port, empty, like one without disk)."""
    redis = EmbeddedRedis(data_folder("redis-worker-test")).start()
    yield redis
    redis.stop()


@pytest.fixture
def worker_config(
    settings: Settings, own_redis: EmbeddedRedis, fake_telegram: FakeTelegram
) -> Settings:
    """The suite's settings, on the test's own Redis and the fake Telegram, with the
    worker's intervals shrunk so that outages of a second or two outlast several retries."""
    return settings.model_copy(
        update={
            "REDIS_URL": own_redis.url,
            "TELEGRAM_API_BASE": fake_telegram.url,
            "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
            "WORKER_RETRY_MAX_SECONDS": 0.2,
            "WORKER_HEARTBEAT_SECONDS": 0.2,
        }
    )


@pytest.fixture(scope="session")
def worker_postgres() -> RestartablePostgres:
    return RestartablePostgres("postgres-worker-test", "library_worker")


@pytest.fixture
async def worker_postgres_db(worker_postgres: RestartablePostgres) -> AsyncIterator[Database]:
    url = worker_postgres.database_url
    db = Database.connect(url, Settings(_env_file=None, DATABASE_URL=url), pool_size=2)  # type: ignore[call-arg]
    async with db.engine.begin() as connection:
        await connection.exec_driver_sql("TRUNCATE notifications RESTART IDENTITY")
    yield db
    await db.dispose()


async def record(db: Database, redis_url: str, texts: list[str]) -> list[int]:
    """Staff messages recorded as the API records them (queued after the commit, if Redis
    answers: the outbox keeps them either way)."""
    queue = connect_queue(redis_url)
    try:
        async with UnitOfWork(db, queue).write() as session:
            service = NotificationService(session)
            return [await service.record("test", text) for text in texts]
    finally:
        await queue.aclose()


async def statuses(db: Database) -> dict[str, str]:
    async with db.autocommit_sessionmaker() as session:
        rows = await session.execute(select(Notification.text, Notification.status))
        return {row.text: row.status for row in rows}


async def eventually(
    condition: Callable[[], Awaitable[bool]], *, within: float = 15, what: str = ""
) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what or condition}")
        await asyncio.sleep(0.05)
