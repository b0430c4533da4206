"""Engine, sessions and the unit of work.

A request gets one session. Writes happen inside `unit_of_work`: it commits before the
response is built (or rolls back on any error), and only after the commit hands the jobs
the request deferred to the queue. Pure reads, and writes of a single statement (which is
atomic by itself), use a session on an autocommit connection: that saves the BEGIN and
COMMIT/ROLLBACK round trips a transaction would cost.

The hot paths' statements are built once, at import, with `bindparam()` for their values
(or once per filter shape, with `functools.cache`), and executed with a parameter dict.
SQLAlchemy computes a statement's cache key on every execution of a freshly built
statement and only once for a reused one: measured here, that is about 110 µs of CPU saved
per execution, against about 250 µs for the whole of a simple select.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, Select, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from library_service.core.config import Settings
from library_service.core.jobs import enqueue_deferred_jobs

if TYPE_CHECKING:
    from arq.connections import ArqRedis

# Rows and selects of any shape (SQLAlchemy types them by their columns).
AnyRow = Row[*tuple[Any, ...]]
AnySelect = Select[*tuple[Any, ...]]


def async_database_url(url: str) -> str:
    """Accept `postgresql://`/`postgres://` URLs too and use the asyncpg driver."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.drivername in {"postgresql", "postgresql+psycopg2", "postgresql+psycopg"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


@dataclass(frozen=True, slots=True)
class Database:
    engine: AsyncEngine
    autocommit_engine: AsyncEngine  # for single statements on a plain connection
    sessionmaker: async_sessionmaker[AsyncSession]
    autocommit_sessionmaker: async_sessionmaker[AsyncSession]

    @classmethod
    def connect(cls, url: str, settings: Settings, **engine_options: Any) -> Database:
        options: dict[str, Any] = {
            "pool_size": settings.DB_POOL_SIZE,
            "max_overflow": settings.DB_MAX_OVERFLOW,
            "pool_timeout": settings.DB_POOL_TIMEOUT_SECONDS,
            "pool_recycle": 1800,
            "connect_args": {
                "server_settings": {
                    "application_name": "library-service",
                    "timezone": "UTC",
                },
                "timeout": 5,
                "command_timeout": 30,
            },
        }
        options.update(engine_options)
        engine = create_async_engine(async_database_url(url), **options)
        event.listen(engine.sync_engine.pool, "checkout", _discard_closed_connection)
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        return cls(
            engine=engine,
            autocommit_engine=autocommit,
            sessionmaker=async_sessionmaker(engine, expire_on_commit=False, autoflush=False),
            autocommit_sessionmaker=async_sessionmaker(autocommit, expire_on_commit=False),
        )

    async def dispose(self) -> None:
        await self.engine.dispose()


def _discard_closed_connection(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """A pre-ping that costs no round trip.

    When PostgreSQL restarts it closes every session, and asyncpg notices on its own (the
    socket reports EOF to the event loop). Such a connection is dropped at checkout and the
    pool hands out a new one. SQLAlchemy's `pool_pre_ping` would instead send BEGIN, a
    query and ROLLBACK on every checkout with asyncpg: three round trips per request.
    Connections that die silently (no FIN) still fail on use; the pool is then invalidated
    as a whole, and the request answers 503.
    """
    if dbapi_connection._connection.is_closed():
        raise DisconnectionError("the server closed this connection")


@asynccontextmanager
async def unit_of_work(db: Database, queue: ArqRedis | None) -> AsyncIterator[AsyncSession]:
    """Commit on success, roll back on error, then enqueue the jobs the work deferred."""
    async with db.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
    await enqueue_deferred_jobs(queue, session)


async def read_without_transaction(session: AsyncSession) -> None:
    """Run the session's next statements on an autocommit connection, until
    `release_connection()`: the reads that precede slow work (a call to Stripe, bcrypt)
    then cost no BEGIN and no ROLLBACK. A session already in a transaction stays in it.

    The connection goes back to the pool as usual; statements after the release run in
    an ordinary transaction again, on a connection checked out afresh.
    """
    if not session.in_transaction():
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


async def release_connection(session: AsyncSession) -> None:
    """End a transaction that has only read, so its connection returns to the pool before
    slow work that needs no database (bcrypt, a call to Stripe).

    Loaded objects are expired afterwards: copy what is still needed into plain values first.
    """
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("release_connection() would discard pending writes")
    await session.rollback()
