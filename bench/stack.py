"""The production-style stack the benchmark drives, and the sampler that watches the API.

PostgreSQL and Redis come from DATABASE_URL / REDIS_URL, or are the embedded ones; the
sandbox Stripe, the API (`library-service run --workers 2 --no-worker` with
ENVIRONMENT=production, as the Dockerfile runs it) and the arq worker are subprocesses.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results"
LOGS = RESULTS / "logs"
DATA = ROOT / ".data"
BENCH_DATABASE = "library_bench"
API_WORKERS = 2
STOP_TIMEOUT_SECONDS = 30


@dataclass(frozen=True, slots=True)
class Database:
    url: str
    server_pid: int | None  # the embedded postmaster; None for DATABASE_URL's server


def start_database() -> Database:
    """A fresh, migrated `library_bench` database on DATABASE_URL's server or the embedded one."""
    from library_service.core.db import async_database_url
    from library_service.dev.embedded import create_database, start_postgres, with_database

    configured = os.environ.get("DATABASE_URL")
    server_pid = None
    if configured:
        admin = async_database_url(configured)
    else:  # the embedded server stops when this process exits
        folder = DATA / "postgres-bench"
        admin = start_postgres(folder)
        server_pid = int((folder / "postmaster.pid").read_text().split()[0])
    asyncio.run(create_database(admin, BENCH_DATABASE, drop_existing=True))
    url = with_database(admin, BENCH_DATABASE)
    migrate(url)
    return Database(url=url, server_pid=server_pid)


def migrate(url: str) -> None:
    """Alembic up to head, as `library-service migrate` does."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")


@dataclass(frozen=True, slots=True)
class Redis:
    url: str
    server_pid: int | None  # the embedded redis-server; None for REDIS_URL's


def start_redis(stack: ExitStack) -> Redis:
    if configured := os.environ.get("REDIS_URL"):
        return Redis(url=configured, server_pid=None)
    from library_service.dev.embedded import EmbeddedRedis

    redis = EmbeddedRedis(DATA / "redis-bench").start()
    stack.callback(redis.stop)
    assert redis.process is not None
    return Redis(url=redis.url, server_pid=redis.process.pid)


def free_port() -> int:
    from library_service.dev.embedded import free_port as pick

    return pick()


def service_environment(
    *,
    database_url: str,
    redis_url: str,
    api_port: int,
    sandbox_port: int,
    telegram_port: int | None = None,
    smtp_port: int | None = None,
) -> dict[str, str]:
    """What the API and the worker run with: production settings, the sandbox as Stripe,
    and the sinks (bench/sinks_server.py) as Telegram and the SMTP server when given."""
    environment = dict(os.environ)
    environment.update(
        ENVIRONMENT="production",
        SECRET_KEY=secrets.token_urlsafe(48),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        STRIPE_SECRET_KEY="sk_test_bench",
        STRIPE_API_BASE=f"http://127.0.0.1:{sandbox_port}",
        STRIPE_WEBHOOK_SECRET="whsec_bench_" + secrets.token_hex(16),
        PUBLIC_BASE_URL=f"http://127.0.0.1:{api_port}",
        BCRYPT_ROUNDS="12",  # the production cost, whatever the caller's shell says
        LOGIN_RATE_LIMIT="1000000",  # every login comes from 127.0.0.1
        LOGIN_RATE_LIMIT_PER_ADDRESS="1000000",
        PYTHONUNBUFFERED="1",
    )
    if telegram_port is not None:
        environment.update(
            TELEGRAM_API_BASE=f"http://127.0.0.1:{telegram_port}",
            TELEGRAM_BOT_TOKEN="1:bench",
            TELEGRAM_CHAT_ID="-100",
        )
    if smtp_port is not None:
        environment.update(
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(smtp_port),
            SMTP_STARTTLS="false",
            MAIL_FROM="desk@bench.example.com",
        )
    return environment


class Service:
    """A subprocess in its own session (Ctrl-C reaches only us), logging to a file."""

    def __init__(self, name: str, argv: list[str], environment: dict[str, str]) -> None:
        self.name = name
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.process.returncode}; see {self.log_path}"
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def start_service(
    stack: ExitStack, name: str, argv: list[str], environment: dict[str, str]
) -> Service:
    service = Service(name, argv, environment)
    stack.callback(service.stop)
    return service


def start_script(
    stack: ExitStack, name: str, script: str, args: list[str], environment: dict[str, str]
) -> Service:
    """One of the bench's own servers (`bench/<script>`), in a process of its own."""
    argv = [sys.executable, str(Path(__file__).with_name(script)), *args]
    return start_service(stack, name, argv, environment)


def start_sandbox(
    stack: ExitStack, sandbox_port: int, api_port: int, environment: dict[str, str]
) -> Service:
    """The sandbox Stripe, posting its signed webhooks to the API."""
    webhook = f"http://127.0.0.1:{api_port}/api/payments/webhook/"
    args = [f"--port={sandbox_port}", f"--webhook-url={webhook}"]
    return start_script(stack, "sandbox", "sandbox_server.py", args, environment)


def start_sinks(
    stack: ExitStack, telegram_port: int, smtp_port: int, environment: dict[str, str]
) -> Service:
    """Telegram and the SMTP server the worker delivers to (bench/sinks_server.py)."""
    args = [f"--telegram-port={telegram_port}", f"--smtp-port={smtp_port}"]
    return start_script(stack, "sinks", "sinks_server.py", args, environment)


def start_worker(stack: ExitStack, environment: dict[str, str]) -> Service:
    """The arq worker, as production runs it."""
    return start_service(stack, "worker", [str(BIN / "library-service"), "worker"], environment)


def wait_http(service: Service, url: str, *, timeout: float = 60, any_status: bool = False) -> None:
    """Until `url` answers 200 (any answer with `any_status`), the service dies or time is up."""
    deadline = time.monotonic() + timeout
    while True:
        service.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except urllib.error.HTTPError:
            if any_status:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{service.name} not ready at {url}; see {service.log_path}")
        time.sleep(0.2)


def api_workers(api: Service, *, timeout: float = 60) -> list[psutil.Process]:
    """uvicorn's worker processes under the API's supervisor, once all have started."""
    deadline = time.monotonic() + timeout
    while True:
        api.check_alive()
        workers = [
            child
            for child in psutil.Process(api.pid).children(recursive=True)
            if "spawn_main" in " ".join(_cmdline(child))
        ]
        if len(workers) >= API_WORKERS:
            return sorted(workers, key=lambda process: process.pid)
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(workers)} API workers started; see {api.log_path}")
        time.sleep(0.2)


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return list(process.cmdline())
    except psutil.Error:
        return []


# -- sampling the API workers and the CPU ----------------------------------------------------


class ProcessTree:
    """A process and its descendants, for CPU accounting."""

    def __init__(self, name: str, pid: int) -> None:
        self.name = name
        self.root = psutil.Process(pid)

    def cpu_seconds(self) -> float:
        """CPU used so far: the root, its live descendants, and the children it has reaped
        (so PostgreSQL backends that came and went still count)."""
        try:
            own = self.root.cpu_times()
            descendants = self.root.children(recursive=True)
        except psutil.Error:
            return 0.0
        total = own.user + own.system + own.children_user + own.children_system
        for process in descendants:
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return float(total)


def _box_busy_seconds() -> float:
    """CPU seconds every core has spent on anything but idling, since boot."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


@dataclass(slots=True)
class Usage:
    """What the API workers and the box used during one cell."""

    rss_peak_mb: dict[int, float]  # API worker pid -> peak RSS in the window
    connections: dict[int, int]  # API worker pid -> most client connections seen at once
    worker_cpu_percent: dict[int, float]  # API worker pid -> CPU, 100 = one core
    cpu_percent: dict[str, float]  # process tree name -> CPU, 100 = one core
    box_cpu_percent: float  # every process on the machine, 100 = one core
    seconds: float  # the window's length


@dataclass
class Sampler:
    """Samples the API workers' RSS every `interval` seconds from a thread, and the CPU of
    the stack's process trees between `begin_window()` and `end_window()`."""

    workers: list[psutil.Process]
    trees: list[ProcessTree]
    api_port: int
    interval: float = 0.2
    connections_every: int = 5  # samples (counting sockets costs more than reading RSS)
    peak_mb: dict[int, float] = field(default_factory=dict)  # whole run
    _window_mb: dict[int, float] = field(default_factory=dict)
    _window_connections: dict[int, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _window_started: float = 0.0
    _cpu_started: dict[str, float] = field(default_factory=dict)
    _worker_cpu_started: dict[int, float] = field(default_factory=dict)
    _box_started: float = 0.0

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        samples = 0
        while not self._stop.wait(self.interval):
            self.sample()
            samples += 1
            if samples % self.connections_every == 0:
                self.count_connections()

    def count_connections(self) -> None:
        for worker in self.workers:
            try:
                sockets = worker.net_connections(kind="tcp")
            except psutil.Error:
                continue
            count = sum(
                1
                for sock in sockets
                if sock.status == psutil.CONN_ESTABLISHED and sock.laddr.port == self.api_port
            )
            with self._lock:
                seen = self._window_connections.get(worker.pid, 0)
                self._window_connections[worker.pid] = max(seen, count)

    def sample(self) -> None:
        for worker in self.workers:
            try:
                rss_mb = worker.memory_info().rss / 2**20
            except psutil.Error:
                continue  # a worker that died shows up as errors and in the last check
            with self._lock:
                self.peak_mb[worker.pid] = max(self.peak_mb.get(worker.pid, 0.0), rss_mb)
                self._window_mb[worker.pid] = max(self._window_mb.get(worker.pid, 0.0), rss_mb)

    def begin_window(self) -> None:
        self.sample()
        with self._lock:
            self._window_mb.clear()
            self._window_connections.clear()
        self._window_started = time.monotonic()
        self._cpu_started = {tree.name: tree.cpu_seconds() for tree in self.trees}
        self._worker_cpu_started = {worker.pid: _cpu_seconds(worker) for worker in self.workers}
        self._box_started = _box_busy_seconds()

    def end_window(self) -> Usage:
        self.sample()
        elapsed = time.monotonic() - self._window_started
        cpu = {
            tree.name: 100 * (tree.cpu_seconds() - self._cpu_started[tree.name]) / elapsed
            for tree in self.trees
        }
        workers = {
            worker.pid: 100
            * (_cpu_seconds(worker) - self._worker_cpu_started[worker.pid])
            / elapsed
            for worker in self.workers
        }
        box = 100 * (_box_busy_seconds() - self._box_started) / elapsed
        with self._lock:
            peaks = dict(self._window_mb)
            connections = dict(self._window_connections)
        return Usage(
            rss_peak_mb=peaks,
            connections=connections,
            worker_cpu_percent=workers,
            cpu_percent=cpu,
            box_cpu_percent=box,
            seconds=elapsed,
        )


def _cpu_seconds(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)
