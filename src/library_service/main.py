"""The FastAPI application: routers, error handlers, middleware and the shared clients."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy import text

from library_service.admin.site import install_admin
from library_service.audit.router import router as audit_router
from library_service.books.router import router as books_router
from library_service.borrowings.router import router as borrowings_router
from library_service.core.config import Settings, get_settings
from library_service.core.db import Database
from library_service.core.errors import install_error_handlers
from library_service.core.logging import configure_logging
from library_service.core.queue import connect_queue, worker_state
from library_service.holds.router import router as holds_router
from library_service.notifications.router import router as notices_router
from library_service.payments.router import router as payments_router
from library_service.payments.stripe_client import StripeGateway
from library_service.services import Services
from library_service.users.router import router as users_router
from library_service.web.docs import install_docs
from library_service.web.drain import Drain, DrainMiddleware
from library_service.web.idempotency import install_idempotency
from library_service.web.metrics import install_metrics, watch_pool
from library_service.web.middleware import ServiceMiddleware
from library_service.web.openapi import install_dated_examples

DESCRIPTION = """
Circulation API of the library: the catalogue, borrowings with their daily fees and fines,
card payments through Stripe Checkout.

Authenticate with **POST /api/users/token/**, then press **Authorize** and paste the `access`
token. Errors answer `{"detail": "...", "code": "..."}`; malformed input answers 422.
"""

READY_TIMEOUT_SECONDS = 2.0
# `/ready?worker=true` also requires a fresh worker heartbeat (for monitoring; see the README).
# Left out of the schema: clients have no use for it, and without a worker it answers 503.
WorkerParameter = Annotated[bool, Query(include_in_schema=False)]
GC_THRESHOLD_GEN0 = 20_000
GZIP_MINIMUM_BYTES = 1400


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    if not settings.DATABASE_URL:
        raise RuntimeError(
            "DATABASE_URL is not set: start the service with `library-service run` "
            "(which starts an embedded database) or set DATABASE_URL."
        )
    app.state.db = Database.connect(settings.DATABASE_URL, settings)
    unwatch_pool = watch_pool(app.state.db) if settings.metrics_enabled else None
    app.state.queue = connect_queue(settings.REDIS_URL) if settings.REDIS_URL else None
    app.state.stripe = StripeGateway(settings)
    app.state.services = Services(settings, app.state.db, app.state.queue, app.state.stripe)
    # Everything allocated so far lives as long as the process: keep it out of GC passes,
    # and collect the youngest generation less often (requests allocate many short-lived
    # objects; the default threshold of 700 runs a pass every few requests).
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD_GEN0, 20, 20)
    drain: Drain = app.state.drain
    drain.install()
    try:
        yield
    finally:
        drain.uninstall()
        await app.state.stripe.close()
        if app.state.queue is not None:
            await app.state.queue.aclose()
        if unwatch_pool is not None:
            unwatch_pool()
        await app.state.db.dispose()


def create_app(settings: Settings | None = None, *, configure_logs: bool = True) -> FastAPI:
    settings = settings or get_settings()
    if configure_logs:
        configure_logging(json_logs=settings.json_logs)
    app = FastAPI(
        title="Library Service",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        redirect_slashes=False,
        swagger_ui_parameters={"persistAuthorization": True},
        docs_url=None,  # install_docs serves the docs pages with their assets
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.drain = Drain(settings.shutdown_drain_seconds)
    install_error_handlers(app)

    app.include_router(users_router)
    app.include_router(books_router)
    app.include_router(borrowings_router)
    app.include_router(holds_router)
    app.include_router(payments_router)
    app.include_router(notices_router)
    app.include_router(audit_router)
    _add_service_routes(app)
    install_dated_examples(app, settings)
    install_docs(app)
    install_admin(app, settings)  # the staff admin at /admin
    install_idempotency(app)
    if settings.metrics_enabled:
        install_metrics(app)

    if settings.CORS_ORIGINS:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.CORS_ORIGINS,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    # Text answers past a packet or so, for clients that take gzip (the docs assets come
    # compressed already). Level 1: 23 µs for a page of 20 books (6.2 kB → 376 B), within 5 %
    # of level 9's size at a third of its CPU.
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM_BYTES, compresslevel=1)
    app.add_middleware(ServiceMiddleware, max_body_bytes=settings.MAX_BODY_BYTES)
    app.add_middleware(DrainMiddleware, drain=app.state.drain)
    return app


def _add_service_routes(app: FastAPI) -> None:
    @app.get("/health", tags=["service"], operation_id="service_health")
    async def health() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get(
        "/ready",
        tags=["service"],
        operation_id="service_ready",
        responses={503: {"description": "A dependency is down"}},
    )
    async def ready(request: Request, worker: WorkerParameter = False) -> JSONResponse:
        """The database and Redis answer (503 once the process is stopping)."""
        if request.app.state.drain.draining:  # SIGTERM: the balancer's cue to look elsewhere
            return JSONResponse({"status": "stopping"}, status_code=503)
        checks = {
            "database": await _check(_ping_database(request.app.state.db)),
            "redis": await _check(_ping_redis(request.app.state.queue)),
        }
        if worker:  # only on request: the API itself serves without a worker
            checks["worker"] = await _check(_worker_state(request.app.state))
        healthy = all(state in {"ok", "not configured"} for state in checks.values())
        return JSONResponse(
            {"status": "ok" if healthy else "unavailable", **checks},
            status_code=200 if healthy else 503,
        )

    @app.get("/api/schema/", include_in_schema=False)
    async def schema_alias() -> dict[str, Any]:
        return app.openapi()


async def _ping_database(db: Database) -> str:
    async with db.autocommit_sessionmaker() as session:
        await session.execute(text("SELECT 1"))
    return "ok"


async def _ping_redis(queue: Any) -> str:
    if queue is None:
        return "not configured"
    await queue.ping()
    return "ok"


async def _worker_state(state: Any) -> str:
    return await worker_state(state.queue, state.settings.WORKER_HEARTBEAT_SECONDS)


async def _check(probe: Any) -> str:
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            result: str = await probe
            return result
    except Exception as exc:
        return f"unavailable: {type(exc).__name__}"
