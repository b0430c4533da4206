"""Many processes, one library: three `library-service run` API processes behind a small
load balancer, two `library-service worker` processes, one PostgreSQL (through PgBouncer in
transaction mode when it is installed) and one Redis (the suite's, on a database number of
its own), the sandbox Stripe, a fake Telegram and a real SMTP server (aiosmtpd), all on
loopback.

The balancer is an asyncio TCP proxy (like HAProxy in `mode tcp`): a client connection goes
to the next backend whose `/ready` answered 200 at the last check (every 0.1 s), and stays
there for its life. Every check is recorded, so a test can see what a stopping process said.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from library_service.core.db import Database
from library_service.dev.embedded import DATA_DIR, free_port
from library_service.dev.fake_stripe import SandboxStripe
from library_service.dev.local import serve_in_thread
from library_service.dev.mailbox import Mailbox
from tests.isolation import emptying_script
from tests.pgbouncer import PgBouncer, pgbouncer_installed
from tests.servers import forget_earlier_runs

COMMAND = str(Path(sys.executable).with_name("library-service"))
LOGS = DATA_DIR / f"scaleout-{os.getpid()}"
WEBHOOK_SECRET = "whsec_scaleout"
METRICS_TOKEN = "scaleout-metrics-token"
DRAIN_SECONDS = 1.0
CHECK_INTERVAL = 0.1
REDIS_DB = 13
WORKER_NAMES = ("a", "b")
MAIL_DOMAIN = "scaleout.example.com"


@pytest.fixture(scope="session")
async def emptying(db: Database) -> str:
    """As the suite's, except that ids go on counting from test to test: the processes here
    outlive every reset, and a job still queued for a message of one test must not find (and
    settle) the next test's message of the same id."""
    async with db.autocommit_engine.connect() as connection:
        raw = await connection.get_raw_connection()
        return await emptying_script(raw.driver_connection, restart_sequences=False)


# -- the fake Telegram -------------------------------------------------------------------


@dataclass
class Send_:
    worker: str  # from the bot token each worker is given
    text: str
    arrived: float
    answered: float | None = None


class FakeTelegram:
    """sendMessage on loopback; knows which worker sent what, and what is still in flight."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sends: list[Send_] = []
        self.delay = 0.0
        self.app = Starlette(
            routes=[Route("/bot{token}/sendMessage", self._send, methods=["POST"])]
        )

    async def _send(self, request: Request) -> JSONResponse:
        body = await request.json()
        send = Send_(request.path_params["token"].split(":")[1], body["text"], time.monotonic())
        self.sends.append(send)
        deadline = time.monotonic() + self.delay
        while time.monotonic() < deadline and self.delay:  # noqa: ASYNC110 - cut short by tests
            await asyncio.sleep(0.02)
        send.answered = time.monotonic()
        return JSONResponse({"ok": True, "result": {}})

    def delivered(self) -> list[str]:
        return [send.text for send in self.sends]

    def in_flight(self, worker: str) -> list[str]:
        return [s.text for s in self.sends if s.worker == worker and s.answered is None]


# -- the sandbox Stripe, with a gate on the session lookups the worker's poll makes ---------


class StripeGate:
    """Holds `GET /v1/checkout/sessions/{id}` while closed, noting whose key asked."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.open = threading.Event()
        self.open.set()
        self.held: list[str] = []  # the API key of each request held

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"].startswith("/v1/checkout/sessions/")
            and not self.open.is_set()
        ):
            headers = dict(scope["headers"])
            self.held.append(headers.get(b"authorization", b"").decode().rpartition(" ")[2])
            while not self.open.is_set():  # noqa: ASYNC110 - a thread's event
                await asyncio.sleep(0.02)
        await self.app(scope, receive, send)


# -- the balancer ------------------------------------------------------------------------


@dataclass
class Check:
    port: int
    sent: float
    status: int | None  # None: no answer


@dataclass
class Balancer:
    backends: list[int]
    port: int = field(default_factory=free_port)
    healthy: dict[int, bool] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    routed: dict[int, int] = field(default_factory=dict)
    _next: int = 0

    def start(self) -> Balancer:
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self._thread.start()
        started.wait(5)
        return self

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
            self._checker = asyncio.ensure_future(self._check_forever())
            started.set()
            await self._server.serve_forever()

        with contextlib.suppress(asyncio.CancelledError):
            self._loop.run_until_complete(main())

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._checker.cancel)
        self._thread.join(5)

    async def _check_forever(self) -> None:
        while True:
            await asyncio.gather(*(self._check(port) for port in self.backends))
            await asyncio.sleep(CHECK_INTERVAL)

    async def _check(self, port: int) -> None:
        check = Check(port, time.monotonic(), None)
        try:
            async with asyncio.timeout(1):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"GET /ready HTTP/1.0\r\nHost: lb\r\n\r\n")
                line = await reader.readline()
                writer.close()
            check.status = int(line.split()[1])
        except (OSError, TimeoutError, IndexError, ValueError):
            pass
        self.checks.append(check)
        self.healthy[port] = check.status == 200

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up = [port for port in self.backends if self.healthy.get(port)]
        if not up:
            writer.close()
            return
        port = up[self._next % len(up)]
        self._next += 1
        self.routed[port] = self.routed.get(port, 0) + 1
        try:
            backend_reader, backend_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            _pipe(reader, backend_writer), _pipe(backend_reader, writer), return_exceptions=True
        )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            writer.close()


# -- the processes -----------------------------------------------------------------------


class Process:
    """One `library-service` process, logging to a file of its own."""

    def __init__(self, name: str, argv: list[str], environment: dict[str, str]) -> None:
        self.name = name
        self.argv = argv
        self.environment = environment
        self.log = LOGS / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(  # noqa: S603 - our own command
                self.argv,
                env=self.environment,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Stack:
    database_url: str  # direct, for the test's own checks
    redis_url: str
    balancer: Balancer
    apis: dict[int, Process]
    workers: dict[str, Process]
    telegram: FakeTelegram
    mailbox: Mailbox
    sandbox: SandboxStripe
    stripe_gate: StripeGate
    bouncer: PgBouncer | None
    api_environment: dict[str, str]  # what each API process is started with

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.balancer.port}"

    def worker_log(self, name: str) -> str:
        return self.workers[name].log.read_text(errors="replace")

    def wait_ready(self, port: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.balancer.healthy.get(port):
            api = self.apis[port]
            assert api.process is not None
            if api.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"API on {port} not ready; see {api.log}")
            time.sleep(0.05)


def _environment(**values: str) -> dict[str, str]:
    base = {name: value for name, value in os.environ.items() if name in {"PATH", "HOME"}}
    return base | {"PYTHONUNBUFFERED": "1"} | values


@pytest.fixture(scope="package")  # one stack for the package: starting it takes ~10 s
def stack(database_url_for_tests: str, redis_url_for_tests: str) -> Iterator[Stack]:
    forget_earlier_runs("scaleout-")
    forget_earlier_runs("pgbouncer-scaleout-")
    bouncer = None
    database_url = database_url_for_tests
    pooler = "none"
    if pgbouncer_installed():
        bouncer = PgBouncer(database_url_for_tests, name=f"scaleout-{os.getpid()}").start()
        database_url = bouncer.url(make_url(database_url_for_tests).database or "postgres")
        pooler = "pgbouncer"
    redis_url = str(make_url(redis_url_for_tests).set(database=str(REDIS_DB)))
    telegram = FakeTelegram()
    stop_telegram = serve_in_thread(telegram.app, telegram.port, name="scaleout-telegram")
    mailbox = Mailbox(LOGS / "mailbox").start()
    api_ports = [free_port() for _ in range(3)]
    balancer = Balancer(api_ports).start()
    sandbox_port = free_port()
    sandbox = SandboxStripe(
        public_url=f"http://127.0.0.1:{sandbox_port}",
        webhook_url=f"http://127.0.0.1:{balancer.port}/api/payments/webhook/",
        webhook_secret=WEBHOOK_SECRET,
    )
    gate = StripeGate(sandbox.app)
    stop_sandbox = serve_in_thread(gate, sandbox_port, name="scaleout-stripe")
    common = {
        "DATABASE_URL": database_url,
        "DATABASE_POOLER": pooler,
        "REDIS_URL": redis_url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "STRIPE_API_BASE": f"http://127.0.0.1:{sandbox_port}",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_TIMEOUT_SECONDS": "5",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{balancer.port}",
        "BCRYPT_ROUNDS": "4",
        "METRICS_ENABLED": "true",
        "METRICS_TOKEN": METRICS_TOKEN,
        "LOG_JSON": "false",
        "DB_POOL_SIZE": "5",
        "LIBRARY_TIMEZONE": "UTC",
    }
    api_environment = _environment(
        **common,
        ENVIRONMENT="production",
        STRIPE_SECRET_KEY="sk_test_scaleout_api",
        SHUTDOWN_DRAIN_SECONDS=str(DRAIN_SECONDS),
        LOGIN_RATE_LIMIT="3",
        FORWARDED_ALLOW_IPS="127.0.0.1",
    )
    apis = {
        port: Process(
            f"api-{index}",
            [COMMAND, "run", "--host=127.0.0.1", f"--port={port}", "--no-worker"],
            api_environment,
        )
        for index, port in enumerate(api_ports)
    }
    workers = {
        name: Process(
            f"worker-{name}",
            [COMMAND, "worker"],
            _environment(
                **common,
                ENVIRONMENT="test",  # WORKER_CRON_EVERY_SECONDS is refused in production
                STRIPE_SECRET_KEY=f"sk_test_worker_{name}",
                TELEGRAM_API_BASE=telegram.url,
                TELEGRAM_BOT_TOKEN=f"1:{name}",
                TELEGRAM_CHAT_ID="-100",
                TELEGRAM_TIMEOUT_SECONDS="0.5",
                TELEGRAM_SEND_TIMEOUT_SECONDS="1",  # a lease of 3 s
                NOTIFY_BACKOFF_SECONDS="0.2",
                WORKER_HEARTBEAT_SECONDS="0.5",
                WORKER_RETRY_MAX_SECONDS="0.5",
                WORKER_JOB_TIMEOUT_SECONDS="3",
                WORKER_JOB_GRACE_SECONDS="1",  # a dead worker's job runs again after 4 s
                WORKER_CRON_EVERY_SECONDS="2",
                OVERDUE_REPORT_TIME="00:00:00",
                REMINDER_TIME="00:00:00",
                SMTP_HOST="127.0.0.1",
                SMTP_PORT=str(mailbox.port),
                SMTP_STARTTLS="false",
                MAIL_FROM=f"desk@{MAIL_DOMAIN}",
            ),
        )
        for name in WORKER_NAMES
    }
    stack = Stack(
        database_url=database_url_for_tests,
        redis_url=redis_url,
        balancer=balancer,
        apis=apis,
        workers=workers,
        telegram=telegram,
        mailbox=mailbox,
        sandbox=sandbox,
        stripe_gate=gate,
        bouncer=bouncer,
        api_environment=api_environment,
    )
    try:
        for port in api_ports:
            stack.wait_ready(port, timeout=60)
        yield stack
    finally:
        processes = [*apis.values(), *workers.values()]
        for process in processes:  # all at once: each drains for a second
            if process.process is not None and process.process.poll() is None:
                process.signal(signal.SIGTERM)
        for process in processes:
            process.stop()
        balancer.stop()
        gate.open.set()
        stop_sandbox()
        stop_telegram()
        mailbox.stop()
        if bouncer is not None:
            bouncer.stop()


def worker_environment(stack: Stack, name: str) -> dict[str, Any]:
    return stack.workers[name].environment
