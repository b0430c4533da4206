"""Fixtures: a real PostgreSQL (fresh database, migrated with Alembic) and a real Redis.

With `TEST_DATABASE_URL` / `TEST_REDIS_URL` unset, embedded servers are started under
`.data/`. Stripe and Telegram are faked at the HTTP boundary (respx), so the real SDK and
client code runs and nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from _pytest.nodeid import coerce_node_id
from alembic import command
from alembic.config import Config

from library_service.core.config import Settings
from library_service.core.db import Database, async_database_url
from library_service.dev.embedded import (
    DATA_DIR,
    EmbeddedRedis,
    create_database,
    drop_database,
    start_postgres,
    with_database,
)
from library_service.dev.fake_stripe import SandboxStripe
from library_service.dev.mailbox import Mailbox
from library_service.main import create_app
from tests.factories import TODAY, Factory, on_day
from tests.isolation import emptying_script
from tests.pgbouncer import suite_database
from tests.servers import data_folder, redis_url_for_worker

# Headless Chromium and live servers, for tests/browser and tests/admin: one of each per run.
pytest_plugins = ["tests.browser.fixtures"]

ROOT = Path(__file__).resolve().parent.parent
STRIPE_BASE = "https://stripe.test"
SANDBOX_PAGES = "https://checkout.stripe.test"
TELEGRAM_BASE = "https://telegram.test"
WEBHOOK_SECRET = "whsec_test_secret"
# One database per run, so runs side by side do not collide; dropped when the run ends.
TEST_DATABASE = f"library_test_{os.getpid()}"


@pytest.fixture(scope="session")
def database_url_for_tests() -> Iterator[str]:
    """A fresh database on TEST_DATABASE_URL's server (or the embedded one), migrated with
    Alembic, so the migrations themselves are under test. Dropped when the run ends."""
    server_url = os.environ.get("TEST_DATABASE_URL") or start_postgres(DATA_DIR / "postgres-test")
    admin_url = with_database(async_database_url(server_url), "postgres")
    # A database thrown away at the end: its commits need not wait for the disk. What other
    # sessions see is unchanged; only a crash of the server could lose the last commits, and
    # the tests that stop a PostgreSQL stop one of their own (tests/servers.py).
    asyncio.run(
        create_database(
            admin_url, TEST_DATABASE, drop_existing=True, settings={"synchronous_commit": "off"}
        )
    )
    url = with_database(admin_url, TEST_DATABASE)
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")
    yield url
    asyncio.run(drop_database(admin_url, TEST_DATABASE))


@pytest.fixture(scope="session")
def redis_url_for_tests() -> Iterator[str]:
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield redis_url_for_worker(url)
        return
    server = EmbeddedRedis(data_folder("redis-test")).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def smtp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mailbox]:
    """One real SMTP server (aiosmtpd) for the whole run: the mail catcher of the local run."""
    mailbox = Mailbox(tmp_path_factory.mktemp("mailbox")).start()
    yield mailbox
    mailbox.stop()


@pytest.fixture
def mailbox(smtp_server: Mailbox) -> Iterator[Mailbox]:
    """The SMTP server, empty, answering 250 to every address, and up."""
    smtp_server.clear()
    yield smtp_server
    smtp_server.refuse.clear()
    smtp_server.defer.clear()
    if smtp_server._controller is None:
        smtp_server.start()


@pytest.fixture(scope="session")
def settings(
    database_url_for_tests: str, redis_url_for_tests: str, smtp_server: Mailbox
) -> Settings:
    database_url, pooler = suite_database(database_url_for_tests)  # TEST_PGBOUNCER=1
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        ENVIRONMENT="test",
        SECRET_KEY="test-secret-key-that-is-long-enough-for-hs256",
        DATABASE_URL=database_url,
        DATABASE_POOLER=pooler,
        REDIS_URL=redis_url_for_tests,
        BCRYPT_ROUNDS=4,
        STRIPE_SECRET_KEY="sk_test_suite",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_API_BASE=STRIPE_BASE,
        STRIPE_TIMEOUT_SECONDS=2,
        # Where the worker's checkout links send payers (the API's own follow each request).
        PUBLIC_BASE_URL="http://testserver",
        TELEGRAM_API_BASE=TELEGRAM_BASE,
        TELEGRAM_BOT_TOKEN="123:test-token",
        TELEGRAM_CHAT_ID="-100123",
        NOTIFY_BACKOFF_SECONDS=0,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=smtp_server.port,
        SMTP_STARTTLS=False,
        SMTP_TIMEOUT_SECONDS=2,
        MAIL_FROM="desk@library.example.com",
        LIBRARY_NAME="Test Library",
        BOOK_COUNT_CACHE_SECONDS=0,  # tests change the catalogue behind the API's back
        ESTIMATED_COUNT_CACHE_SECONDS=0,
        LIBRARY_TIMEZONE="UTC",
    )


@pytest.fixture(scope="session")
def sandbox() -> SandboxStripe:
    return SandboxStripe(public_url=SANDBOX_PAGES, webhook_secret=WEBHOOK_SECRET)


@pytest.fixture
def stripe_mock(sandbox: SandboxStripe) -> Iterator[respx.MockRouter]:
    """Route the SDK's HTTP calls to the sandbox; any other outbound HTTP fails the test."""
    sandbox.reset()
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        router.route(host="stripe.test", name="stripe").mock(
            side_effect=respx.ASGIHandler(sandbox.app)
        )
        router.route(host="checkout.stripe.test", name="checkout").mock(
            side_effect=respx.ASGIHandler(sandbox.app)
        )
        yield router


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings, configure_logs=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def db(app: Any) -> Database:
    database: Database = app.state.db
    return database


@pytest.fixture(scope="session")
async def emptying(db: Database) -> str:
    """The script that empties the test database (see tests/isolation.py)."""
    async with db.autocommit_engine.connect() as connection:
        raw = await connection.get_raw_connection()
        return await emptying_script(raw.driver_connection)


@pytest.fixture(autouse=True)
async def clean_state(app: Any, db: Database, emptying: str) -> None:
    """Every test starts from empty tables and an empty Redis (queue, login throttle)."""
    async with db.autocommit_engine.connect() as connection:
        raw = await connection.get_raw_connection()
        await raw.driver_connection.execute(emptying)
    await app.state.queue.flushdb()
    app.state.services.login_counts.clear()


@pytest.fixture
async def client(app: Any, stripe_mock: respx.MockRouter) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture(scope="session")
def tls() -> ssl.SSLContext:
    """Made once: each new one loads the CA bundle, ~40 ms of CPU."""
    return ssl.create_default_context()


@pytest.fixture
async def browser(
    stripe_mock: respx.MockRouter, tls: ssl.SSLContext
) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the sandbox's hosted checkout pages (served through respx)."""
    async with httpx.AsyncClient(verify=tls) as http:
        yield http


@pytest.fixture
def factory(db: Database, settings: Settings) -> Factory:
    """Rows made straight in the database (see tests/factories.py)."""
    return Factory(db, settings)


@pytest.fixture
def frozen_today() -> Iterator[date]:
    """The library clock stopped on day 0: 2026-03-01, noon UTC (library time zone UTC)."""
    with on_day(0):
        yield TODAY


@pytest.hookimpl(trylast=True)  # after the browser fixtures' hook has grouped its tests
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`--dist loadgroup`), the tests marked `waits` go to one test
    process, one after another: they wait beside the other process's work, not beside each
    other (at the end of the run, in file order, they did).

    pytest-xdist 3.8 sends a group to one process by naming its tests `<node id>@<group>`,
    which it writes to `item._nodeid`; pytest 9.2 keeps the node id in `item._id` instead,
    so the groups were silently ignored (each test process ran some of the browser tests, in
    a Chromium of its own). The names are written here the way pytest 9.2 keeps them.
    """
    if not getattr(config.option, "loadgroup", False):  # set in pytest-xdist workers
        return
    for item in items:
        if item.get_closest_marker("waits"):
            item.add_marker(pytest.mark.xdist_group("waits"))
        group = item.get_closest_marker("xdist_group")
        if group is not None and "@" not in item.nodeid:
            item._id = coerce_node_id(f"{item.nodeid}@{group.args[0]}")
