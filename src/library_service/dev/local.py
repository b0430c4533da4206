"""The local run: embedded stand-ins, first-run demo data, the in-process worker, the banner."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import uvicorn
from sqlalchemy import func, select

from library_service.core.config import Settings, reload_settings
from library_service.core.db import Database
from library_service.core.outages import backoff
from library_service.dev.accounts import demo_logins_in_use, ensure_user, seed_catalogue
from library_service.dev.embedded import DATA_DIR, EmbeddedRedis, free_port
from library_service.dev.fake_stripe import SandboxStripe
from library_service.dev.mailbox import Mailbox
from library_service.models import User
from library_service.supervisor import WorkerSupervisor
from library_service.worker import JOB_COMPLETION_WAIT_SECONDS

logger = logging.getLogger(__name__)

SANDBOX_WEBHOOK_SECRET = "whsec_sandbox_local"  # noqa: S105 - the sandbox's own, never Stripe's
SANDBOX_SESSIONS_FILE = DATA_DIR / "stripe-sandbox" / "sessions.jsonl"
MAILBOX_DIR = DATA_DIR / "mailbox"
DEMO_ACCOUNTS = (
    ("staff", "admin@library.example.com", "admin-password"),
    ("member", "reader@library.example.com", "reader-password"),
)


def start_stand_ins(stack: ExitStack, settings: Settings, *, api_port: int) -> Settings:
    """Start an embedded Redis and the sandbox Stripe where none is configured."""
    if not settings.REDIS_URL:
        redis = EmbeddedRedis(DATA_DIR / "redis").start()
        stack.callback(redis.stop)
        settings = reload_settings(REDIS_URL=redis.url)
    if not settings.STRIPE_SECRET_KEY:
        settings = start_sandbox_stripe(stack, settings, api_port=api_port)
    if not settings.SMTP_HOST:
        settings = start_mailbox(stack, settings)
    return settings


def start_mailbox(stack: ExitStack, settings: Settings) -> Settings:
    """The local mail catcher: a real SMTP server keeping every e-mail under .data/mailbox,
    and its page to read them (the banner links it)."""
    mailbox = Mailbox(MAILBOX_DIR, port=settings.SANDBOX_SMTP_PORT)
    try:
        mailbox.start()
    except (OSError, RuntimeError) as exc:
        raise RuntimeError(
            f"the local mailbox cannot listen on port {settings.SANDBOX_SMTP_PORT}: is it "
            "taken? Set SANDBOX_SMTP_PORT to a free port (0: any)."
        ) from exc
    stack.callback(mailbox.stop)
    page_port = settings.SANDBOX_MAILBOX_PORT or free_port()
    stack.callback(serve_in_thread(mailbox.app, page_port, name="local-mailbox"))
    return reload_settings(
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(mailbox.port),
        SMTP_STARTTLS="false",
        SANDBOX_SMTP_PORT=str(mailbox.port),
        SANDBOX_MAILBOX_PORT=str(page_port),
    )


def start_sandbox_stripe(stack: ExitStack, settings: Settings, *, api_port: int) -> Settings:
    """The sandbox on its fixed port, its sessions kept in the data folder: the payment links
    of earlier runs keep working after a restart."""
    port = settings.SANDBOX_STRIPE_PORT or free_port()
    base = f"http://127.0.0.1:{port}"
    secret = settings.STRIPE_WEBHOOK_SECRET or SANDBOX_WEBHOOK_SECRET
    sandbox = SandboxStripe(
        public_url=base,
        webhook_url=f"http://127.0.0.1:{api_port}/api/payments/webhook/",
        webhook_secret=secret,
        sessions_file=SANDBOX_SESSIONS_FILE,
    )
    try:
        stack.callback(serve_in_thread(sandbox.app, port, name="sandbox-stripe"))
    except RuntimeError as exc:
        raise RuntimeError(
            f"the sandbox Stripe cannot listen on port {port}: is it taken? "
            "Set SANDBOX_STRIPE_PORT to a free port (0: any)."
        ) from exc
    return reload_settings(STRIPE_API_BASE=base, STRIPE_WEBHOOK_SECRET=secret)


def serve_in_thread(
    asgi_app: Any, port: int, *, name: str, lifespan: Literal["on", "off"] = "off"
) -> Callable[[], None]:
    """Serve an ASGI app on loopback from a thread; returns the function that stops it."""
    config = uvicorn.Config(
        asgi_app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan=lifespan,
        # Longer than httpx's 5 s pool expiry, as Stripe's own servers keep connections:
        # with equal timeouts a connection can be closed just as the client reuses it.
        timeout_keep_alive=75,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"{name} did not start on port {port}")
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(5)

    return stop


def start_worker_thread(stack: ExitStack, settings: Settings) -> WorkerThread:
    """Run the worker in this process, on its own event loop, until the stack closes."""
    worker = WorkerThread(settings)
    worker.start()
    stack.callback(worker.stop)
    return worker


class WorkerThread:
    """The worker of `library-service run`, restarted with back-off whenever it stops.

    The supervisor inside already rides out Redis outages; this catches the rest (a bug,
    a failed start-up), so that the API never runs on without its worker.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.restarts = 0
        self._stopping = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._supervisor: WorkerSupervisor | None = None
        self._thread = threading.Thread(target=self._run, name="worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = JOB_COMPLETION_WAIT_SECONDS + 5) -> None:
        """Let the jobs in flight finish, as the standalone worker does on SIGTERM."""
        self._stopping.set()
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self._stop_supervisor)
            self._thread.join(timeout)

    def _stop_supervisor(self) -> None:
        if self._supervisor is not None:
            self._supervisor.stop()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        delays = backoff(self.settings.WORKER_RETRY_MAX_SECONDS)
        try:
            while not self._stopping.is_set():
                self._supervisor = WorkerSupervisor(self.settings)
                try:
                    self._loop.run_until_complete(self._supervisor.run())
                except Exception:
                    delay = next(delays)
                    logger.exception("the worker stopped; restarting it in %.1f s", delay)
                    self.restarts += 1
                    self._stopping.wait(delay)
        finally:
            self._loop.close()


async def first_run_setup(settings: Settings) -> list[tuple[str, str, str]]:
    """On an empty database: demo books, a staff user and a member. Returns the demo logins
    that still work, for the banner: (role, email, password)."""
    db = Database.connect(settings.DATABASE_URL, settings, pool_size=1)
    try:
        async with db.autocommit_sessionmaker() as session:
            users = await session.scalar(select(func.count()).select_from(User))
    finally:
        await db.dispose()
    if users:
        return await demo_logins_in_use(settings, DEMO_ACCOUNTS)
    await seed_catalogue(settings)
    for role, email, password in DEMO_ACCOUNTS:
        await ensure_user(settings, email, password, is_staff=role == "staff")
    return list(DEMO_ACCOUNTS)


def print_banner(
    settings: Settings, *, host: str, port: int, demo_accounts: list[tuple[str, str, str]]
) -> None:
    origin = f"http://{'127.0.0.1' if host in {'0.0.0.0', '::'} else host}:{port}"  # noqa: S104
    lines = [
        "",
        "Library Service",
        f"  API      {origin}/api/",
        f"  Docs     {origin}/docs",
        f"  Admin    {origin}/admin/ (staff sign in with their email and password)",
        f"  Database {_describe(settings.DATABASE_URL)}",
        f"  Redis    {settings.REDIS_URL}",
        f"  Stripe   {_describe_stripe(settings)}",
        f"  E-mail   {_describe_mail(settings)}",
        "  Telegram "
        + ("configured" if settings.TELEGRAM_BOT_TOKEN else "not configured: messages are logged"),
    ]
    if demo_accounts:
        lines.append("  Demo accounts (their passwords are still the demo ones):")
        lines += [f"    {role:<7} {email} / {password}" for role, email, password in demo_accounts]
    lines += ["  Ctrl-C stops everything.", ""]
    print("\n".join(lines), flush=True)


def _describe_mail(settings: Settings) -> str:
    local = settings.SMTP_HOST == "127.0.0.1" and settings.SMTP_PORT == settings.SANDBOX_SMTP_PORT
    if local:
        return f"local mailbox: http://127.0.0.1:{settings.SANDBOX_MAILBOX_PORT}/"
    return f"SMTP at {settings.SMTP_HOST}:{settings.SMTP_PORT}"


def _describe_stripe(settings: Settings) -> str:
    if not settings.STRIPE_SECRET_KEY:
        return f"sandbox at {settings.STRIPE_API_BASE}"
    if urlsplit(settings.STRIPE_API_BASE).hostname == "api.stripe.com":
        return "Stripe API"
    return f"Stripe API at {settings.STRIPE_API_BASE}"  # e.g. the compose file's sandbox


def _describe(url: str) -> str:
    if "host=" in url and str(DATA_DIR) in unquote(url):  # the socket folder is %-encoded
        return f"embedded PostgreSQL in {DATA_DIR / 'postgres'}"
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
