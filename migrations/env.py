"""Alembic environment: async engine, URL from the service's settings."""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from library_service.core.config import get_settings
from library_service.core.db import async_database_url
from library_service.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name)

target_metadata = Base.metadata


def database_url() -> str:
    url = config.attributes.get("database_url") or get_settings().DATABASE_URL
    if not url:
        raise SystemExit("DATABASE_URL is not set (the `library-service migrate` command sets it)")
    return async_database_url(str(url))


# A migration runs while the previous version serves: a lock it cannot get at once must not
# queue every request behind it (each waits for the lock holder first), so it fails fast
# and is run again; no statement may run for ever either.
TIMEOUTS = ("SET LOCAL lock_timeout = '5s'", "SET LOCAL statement_timeout = '15min'")


def _run_with_timeouts() -> None:
    for statement in TIMEOUTS:
        context.execute(statement)
    context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        _run_with_timeouts()


def do_run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        _run_with_timeouts()


async def run_migrations_online() -> None:
    engine = create_async_engine(database_url())
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
