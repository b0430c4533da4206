"""The local run: embedded stand-ins, first-run demo data, the in-process worker, the banner."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any, Literal

import uvicorn
from sqlalchemy import func, select

from library_service.core.config import Settings, reload_settings
from library_service.core.db import Database
from library_service.dev.accounts import demo_logins_in_use, ensure_user, seed_catalogue
from library_service.dev.embedded import DATA_DIR, EmbeddedRedis, free_port
from library_service.dev.fake_stripe import SandboxStripe
from library_service.models import User

logger = logging.getLogger(__name__)

SANDBOX_WEBHOOK_SECRET = "whsec_sandbox_local"  # noqa: S105 - the sandbox's own, never Stripe's
SANDBOX_SESSIONS_FILE = DATA_DIR / "stripe-sandbox" / "sessions.jsonl"
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
    return settings


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


def start_worker_thread(stack: ExitStack, settings: Settings) -> None:
    """Run the arq worker in this process, on its own event loop."""
    from arq.worker import Worker

    from library_service.worker import worker_settings

    started = threading.Event()
    state: dict[str, Any] = {}

    def target() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        worker = Worker(**worker_settings(settings), handle_signals=False)
        state.update(loop=loop, worker=worker)
        started.set()
        worker.run()

    thread = threading.Thread(target=target, name="worker", daemon=True)
    thread.start()
    started.wait(10)

    def stop() -> None:
        if "worker" in state and thread.is_alive():
            state["loop"].call_soon_threadsafe(state["worker"].handle_sig, signal.SIGTERM)
            thread.join(10)

    stack.callback(stop)


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
        "  Stripe   "
        + (
            "Stripe API" if settings.STRIPE_SECRET_KEY else f"sandbox at {settings.STRIPE_API_BASE}"
        ),
        "  Telegram "
        + ("configured" if settings.TELEGRAM_BOT_TOKEN else "not configured: messages are logged"),
    ]
    if demo_accounts:
        lines.append("  Demo accounts (their passwords are still the demo ones):")
        lines += [f"    {role:<7} {email} / {password}" for role, email, password in demo_accounts]
    lines += ["  Ctrl-C stops everything.", ""]
    print("\n".join(lines), flush=True)


def _describe(url: str) -> str:
    if "host=" in url and str(DATA_DIR) in url:
        return f"embedded PostgreSQL in {DATA_DIR / 'postgres'}"
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
