"""Engine, sessions and the unit of work.

Services reach the database only through a `UnitOfWork`, one phase at a time:

- `read()`: a session on an autocommit connection, for reads (and the reads that precede
  slow work: a call to Stripe, bcrypt). No BEGIN and no ROLLBACK: that saves two round
  trips, and the connection goes back to the pool as soon as the block ends.
- `write()`: one transaction. It commits when the block ends (so before the response is
  built), rolls back on any error, and only after the commit hands the jobs the block
  deferred to the queue.

No service commits, rolls back or handles connections itself.

Statements are built inline, as SQLAlchemy's documentation does, except on the paths the
benchmark showed they matter (the catalogue page, a member's borrowings list, the borrow
and return writes, and the authentication every request makes). There they are built once,
with `bindparam()` for their values (or once per filter shape, with `functools.cache`):
SQLAlchemy computes a statement's cache key on every execution of a freshly built statement,
about 110 µs of CPU here, against about 250 µs for the whole of a simple select.

On those paths a statement that loads no ORM objects (an INSERT, a SELECT of columns) is
written against the tables (`models.table_of(Model)` and its `.c` columns), not the mapped
classes: the session then runs it as plain Core, without the ORM's compile and bulk-insert
steps.
Measured through a session: an INSERT … RETURNING 330 → 130 µs of CPU, a SELECT of three
columns 182 → 124 µs. A statement that loads objects, or changes objects the session holds,
stays ORM.

Each statement costs the API about 150 µs of CPU through SQLAlchemy, whatever it does
(`make bench-statements`), so the hottest writes send their rows in one statement: the
rows ride along with the staff message that reports them, as data-modifying WITH clauses
(`Writes`), where the session's flush would send one statement per table.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import uuid4

from sqlalchemy import CTE, Insert, Row, Select, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm.attributes import set_committed_value

from library_service.core.config import Settings
from library_service.core.jobs import enqueue_deferred_jobs

if TYPE_CHECKING:
    from arq.connections import ArqRedis

# What a write phase runs in its transaction just before it commits.
BeforeCommitHooks = list[Callable[[AsyncSession], Awaitable[None]]]
# Rows and selects of any shape (SQLAlchemy types them by their columns).
AnyRow = Row[*tuple[Any, ...]]
AnySelect = Select[*tuple[Any, ...]]
# What statements run on: a session, or a bare connection for the hottest reads that load
# no objects (`UnitOfWork.read_rows()`).
Executor = AsyncSession | AsyncConnection


@dataclass(frozen=True, slots=True)
class Writes:
    """Statements that ride along with another as its WITH clauses (built once each, bound
    to `parameters`): PostgreSQL runs each exactly once, all in one round trip, and checks
    foreign keys when the whole statement ends, so a row and a row that points at it can
    be written together. Each statement's values come from its own bind parameter names."""

    ctes: tuple[CTE, ...]
    parameters: dict[str, Any]


def written(obj: object, attribute: str) -> None:
    """`obj.attribute` as it is now has been written by a statement of our own (`Writes`):
    the session takes it as loaded, and its flush leaves it alone."""
    set_committed_value(obj, attribute, getattr(obj, attribute))


_Insert = TypeVar("_Insert", bound=Insert)


@cache
def with_writes(statement: _Insert, ctes: tuple[CTE, ...]) -> _Insert:
    """`statement` with `ctes` written in front of it, built once per combination (a
    statement built afresh costs its cache key on every run, see above)."""
    return statement.add_cte(*ctes)


def as_dicts(rows: Sequence[AnyRow]) -> list[dict[str, Any]]:
    """Rows as dicts, for pydantic: a model validates a dict in a third of the time it takes
    to read a Row's columns one attribute at a time (`from_attributes`)."""
    if not rows:
        return []
    fields = rows[0]._fields
    return [dict(zip(fields, row, strict=True)) for row in rows]


def async_database_url(url: str) -> str:
    """Accept `postgresql://`/`postgres://` URLs too and use the asyncpg driver."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.drivername in {"postgresql", "postgresql+psycopg2", "postgresql+psycopg"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


# What SQLAlchemy's asyncpg dialect prescribes behind PgBouncer in transaction mode (which,
# before PgBouncer 1.21, keeps no prepared statement across transactions): no statement
# cache, neither SQLAlchemy's nor asyncpg's, and a unique name for every statement, so that
# a name left on a server connection by another client never collides. The pool stays: a
# connection to PgBouncer holds no server connection while idle, and reusing it saves a
# connect and a login per request.
PGBOUNCER_CONNECT_ARGS: dict[str, Any] = {
    "statement_cache_size": 0,
    "prepared_statement_cache_size": 0,
    "prepared_statement_name_func": lambda: f"__asyncpg_{uuid4()}__",
}


@dataclass(frozen=True, slots=True)
class Database:
    engine: AsyncEngine
    # For single statements on a plain connection: reads, and the writes that are one
    # statement each (use `begin()`: behind PgBouncer it is a transaction that commits).
    autocommit_engine: AsyncEngine
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
        if settings.DATABASE_POOLER == "pgbouncer":
            options["connect_args"].update(PGBOUNCER_CONNECT_ARGS)
        options.update(engine_options)
        engine = create_async_engine(async_database_url(url), **options)
        event.listen(engine.sync_engine.pool, "checkout", _discard_closed_connection)
        autocommit = (
            # Behind PgBouncer in transaction mode a statement outside a transaction may be
            # prepared on one server connection and run on another: every phase is a
            # transaction there (a read one ends with ROLLBACK; two round trips more).
            engine
            if settings.DATABASE_POOLER == "pgbouncer"
            else engine.execution_options(isolation_level="AUTOCOMMIT")
        )
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


class UnitOfWork:
    """A request's (or a job's) way to the database: a read phase or a write phase at a time."""

    def __init__(
        self,
        db: Database,
        queue: ArqRedis | None = None,
        *,
        before_commit: BeforeCommitHooks | None = None,
    ) -> None:
        self.db = db
        self.queue = queue
        # Run by every write phase just before it commits, in its transaction (an
        # Idempotency-Key is marked used together with the effects of its request). The
        # list may be shared: a request's hooks hold for every unit of work it uses.
        self.before_commit: BeforeCommitHooks = [] if before_commit is None else before_commit

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """Reads without a transaction; loaded objects stay usable after the block."""
        async with self.db.autocommit_sessionmaker() as session:
            yield session

    @asynccontextmanager
    async def read_rows(self) -> AsyncIterator[AsyncConnection]:
        """As `read()`, on a bare connection, for reads that load no objects: a session's
        own bookkeeping costs about 30 µs of CPU a phase, a tenth of a simple read."""
        async with self.db.autocommit_engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed at the end of the block, rolled back on any error;
        the jobs it deferred are queued once it has committed."""
        async with self.db.sessionmaker() as session:
            try:
                yield session
                for hook in self.before_commit:
                    await hook(session)
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
        await enqueue_deferred_jobs(self.queue, session)
