"""Outages: PostgreSQL restarted while serving, Redis gone. The service answers 503 quickly
(never a hang or a 500 traceback) and recovers by itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from library_service.core.queue import connect_queue
from library_service.main import create_app
from library_service.models import Notification
from tests.factories import BOOK_FIELDS, Factory, count, on_day
from tests.servers import RestartablePostgres


@pytest.fixture(scope="module")
def outage_postgres() -> RestartablePostgres:
    return RestartablePostgres("postgres-fault-test", "library_fault")


@pytest.fixture
async def fault_app(settings, outage_postgres) -> AsyncIterator[Any]:
    app_settings = settings.model_copy(
        update={
            "DATABASE_URL": outage_postgres.database_url,
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


async def test_a_postgres_shutting_down_answers_503(settings, outage_postgres, stripe_mock):
    """While PostgreSQL shuts down (or starts), it refuses new sessions with SQLSTATE 57P03
    (CannotConnectNowError): that is an outage, 503 database_unavailable, not a 500."""
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(outage_postgres.url)
    holder = await asyncpg.connect(  # an open session keeps a smart shutdown from ending
        user=url.username, host=url.query["host"], port=int(url.query["port"]), database="postgres"
    )
    outage_postgres.stop("smart", wait=False)
    try:
        app = create_app(
            settings.model_copy(update={"DATABASE_URL": outage_postgres.database_url}),
            configure_logs=False,
        )
        async with app.router.lifespan_context(app):  # a fresh pool: it must connect now
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                for _ in range(50):  # until the server has begun its shutdown
                    response = await client.get("/api/books/")
                    if response.status_code != 200:
                        break
                    await asyncio.sleep(0.05)
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "database_unavailable"
        assert "Retry-After" in response.headers
    finally:
        await holder.close()  # the smart shutdown ends with its last session
        outage_postgres.await_stopped()
        outage_postgres.start()
