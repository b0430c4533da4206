"""A real PgBouncer (Debian's `pgbouncer`) in transaction mode, in front of a test PostgreSQL.

Started on a free loopback port with a config generated under `.data/`; `.ci/run` installs
the package when it is missing. TEST_PGBOUNCER=1 puts the suite's own database behind one
(see tests/conftest.py and `.ci/run`, which runs a subset that way).
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from library_service.dev.embedded import DATA_DIR, free_port
from tests.servers import forget_earlier_runs

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
START_TIMEOUT_SECONDS = 10


def pgbouncer_installed() -> bool:
    return Path(PGBOUNCER).exists()


class PgBouncer:
    """PgBouncer on 127.0.0.1:<port>, forwarding every database of `server_url`'s server."""

    def __init__(self, server_url: str, *, name: str, pool_size: int = 20) -> None:
        url = make_url(server_url)
        self.user = url.username or "postgres"
        self.folder = DATA_DIR / f"pgbouncer-{name}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        host = url.query.get("host") or url.host or "127.0.0.1"
        server_port = url.query.get("port") or url.port or 5432
        self.config = self.folder / "pgbouncer.ini"
        self.config.write_text(
            "\n".join(
                [
                    "[databases]",
                    f"* = host={host} port={server_port} user={self.user}",
                    "[pgbouncer]",
                    "listen_addr = 127.0.0.1",
                    f"listen_port = {self.port}",
                    f"unix_socket_dir = {self.folder}",
                    "auth_type = any",  # loopback only, for tests
                    "pool_mode = transaction",
                    f"default_pool_size = {pool_size}",
                    "max_client_conn = 500",
                    # Statements asyncpg prepared stay on a server connection; forget them
                    # whenever it changes hands (the README's PgBouncer section).
                    "server_reset_query = DEALLOCATE ALL",
                    "server_reset_query_always = 1",
                    "ignore_startup_parameters = extra_float_digits",
                    f"logfile = {self.folder / 'pgbouncer.log'}",
                    f"pidfile = {self.folder / 'pgbouncer.pid'}",
                    "",
                ]
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/{database}"

    def start(self) -> PgBouncer:
        (self.folder / "pgbouncer.pid").unlink(missing_ok=True)
        self.process = subprocess.Popen(  # noqa: S603 - our own config
            [PGBOUNCER, *self._as_user(), str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"pgbouncer did not start; see {self.folder / 'pgbouncer.log'}"
                    ) from None
                time.sleep(0.05)

    def _as_user(self) -> list[str]:
        """PgBouncer refuses to run as root (CI runs as root): then it runs as the embedded
        PostgreSQL's system user, which owns its folder."""
        if os.geteuid() != 0:
            return []
        for user in ("embedded_postgres", "nobody"):
            try:
                entry = pwd.getpwnam(user)
            except KeyError:
                continue
            for path in (self.folder, *self.folder.iterdir()):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            return ["-u", user]
        return []

    def stop(self) -> None:
        """SIGINT: PgBouncer's immediate shutdown (every client connection is dropped)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


_SUITE_BOUNCER: list[PgBouncer] = []


def suite_database(url: str) -> tuple[str, str]:
    """The suite's DATABASE_URL and DATABASE_POOLER: with TEST_PGBOUNCER=1, through a
    PgBouncer in transaction mode started for the run (stopped when the run ends)."""
    if os.environ.get("TEST_PGBOUNCER") != "1":
        return url, "none"
    if not pgbouncer_installed():
        raise RuntimeError("TEST_PGBOUNCER=1 needs pgbouncer (apt-get install pgbouncer)")
    forget_earlier_runs("pgbouncer-suite-")
    bouncer = PgBouncer(url, name=f"suite-{os.getpid()}").start()
    _SUITE_BOUNCER.append(bouncer)
    atexit.register(bouncer.stop)
    return bouncer.url(make_url(url).database or "postgres"), "pgbouncer"
