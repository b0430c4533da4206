"""Metrics for Prometheus: `GET /metrics`, in its text format.

- `library_http_requests_total{method, route, status}` and
  `library_http_request_duration_seconds{method, route}` (a histogram): every answer, by
  route template (`/api/borrowings/{borrowing_id}/`), counted by `MetricsMiddleware`.
- `library_db_pool_connections_in_use` and `library_db_pool_size`: the API's connections to
  PostgreSQL, checked out now and in all (the pool's own checkout and checkin events).
- `library_notifications{status}`: the staff message outbox, read when scraped. PENDING and
  FAILED are counted (each through a small partial index); SENT, the whole history, is
  PostgreSQL's live-row estimate of the table less those two, so a scrape never scans it.
- `library_jobs_run_total{job}` and `library_jobs_failed_total{job}`: the worker's jobs. The
  worker runs in processes (or a thread) of its own, so each job adds to two hashes in
  Redis as it ends (`count_jobs`), and a scrape of the API reads them: one answer for any
  number of workers, without a port for each. Failed: the job raised (an error, a timeout,
  or arq's Retry after a failed attempt).

With `library-service run --workers N` (N > 1) each uvicorn process counts its own
requests; they write them to files in a shared folder (prometheus_client's multiprocess
mode, `PROMETHEUS_MULTIPROC_DIR`, set up by `run`), and a scrape of any one adds them up.

Off unless `METRICS_ENABLED` (default: on, except in production); with `METRICS_TOKEN` the
scraper must send it as a bearer token (production requires one).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from sqlalchemy import event, text
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from library_service.core.db import Database
from library_service.core.errors import AuthenticationError

if TYPE_CHECKING:
    from arq.connections import ArqRedis

logger = logging.getLogger(__name__)

MULTIPROCESS_FOLDER = "PROMETHEUS_MULTIPROC_DIR"
SCRAPE_TIMEOUT_SECONDS = 2.0
JOBS_RUN_KEY = "library:metrics:jobs:run"  # Redis hashes: job name -> count
JOBS_FAILED_KEY = "library:metrics:jobs:failed"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REGISTRY = CollectorRegistry()
REQUESTS = Counter(
    "library_http_requests",
    "HTTP answers, by route template, method and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "library_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
POOL_IN_USE = Gauge(
    "library_db_pool_connections_in_use",
    "Connections to PostgreSQL checked out of the API's pool now.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "library_db_pool_size",
    "Connections the API's pool keeps (DB_POOL_SIZE per process).",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)

_OUTBOX_QUERY = text(
    # Two counts through partial indexes, and the table's live rows from the statistics.
    "SELECT (SELECT count(*) FROM notifications WHERE status = 'PENDING'),"
    " (SELECT count(*) FROM notifications WHERE status = 'FAILED'),"
    " (SELECT n_live_tup FROM pg_stat_user_tables WHERE relid = 'notifications'::regclass)"
)


# -- requests --------------------------------------------------------------------------


class MetricsMiddleware:
    """Counts and times every answer under its route template (FastAPI leaves the matched
    route in the scope, so nothing is matched twice)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Labelled children, looked up once per label set instead of on every request.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        root_path: str = scope.get("root_path", "")
        status = 500  # unless an answer starts: an exception becomes ServiceMiddleware's 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            self._observe(scope, _template(scope, root_path), status, time.perf_counter() - started)

    def _observe(self, scope: Scope, template: str, status: int, seconds: float) -> None:
        method: str = scope["method"]
        if method not in _METHODS:
            method = "other"  # labels must stay few: a client chooses the method
        counter = self._counters.get((method, template, status))
        if counter is None:
            counter = REQUESTS.labels(method, template, str(status))
            self._counters[method, template, status] = counter
        counter.inc()
        timer = self._timers.get((method, template))
        if timer is None:
            timer = self._timers[method, template] = REQUEST_SECONDS.labels(method, template)
        timer.observe(seconds)


def _template(scope: Scope, root_path: str) -> str:
    """The matched route's template with the paths it is mounted under (the admin's `/login`
    is `/admin/login`), convertors left out (`{user_id}`, not `{user_id:digits}`). A request
    a mounted app answers before its own routing (static files, the admin's sign-in
    redirects) counts under the mount: `/admin/{path}`."""
    # Each Mount passed on the way adds its path to the scope's root_path.
    mounted_under: str = scope.get("root_path", "")[len(root_path) :]
    route = scope.get("route")
    template: str | None = getattr(route, "path_format", None)
    if template is None or isinstance(route, Mount):
        return f"{mounted_under}/{{path}}" if mounted_under else "unmatched"
    return mounted_under + template


# -- the database pool -----------------------------------------------------------------


def watch_pool(db: Database) -> Callable[[], None]:
    """Follow the API pool's checkouts; returns what to call when the pool is disposed."""
    pool = db.engine.sync_engine.pool
    size = pool.size()  # type: ignore[attr-defined]

    # The connection records counted as out. A checkout that a listener refused (a closed
    # connection, see core/db._discard_closed_connection) and whose reconnect then failed
    # is still checked in: counted by the events alone, the gauge would drop below zero.
    out: set[int] = set()

    def checked_out(_connection: Any, record: Any, *_: Any) -> None:
        if id(record) not in out:
            out.add(id(record))
            POOL_IN_USE.inc()

    def checked_in(_connection: Any, record: Any) -> None:
        if id(record) in out:
            out.discard(id(record))
            POOL_IN_USE.dec()

    event.listen(pool, "checkout", checked_out)
    event.listen(pool, "checkin", checked_in)
    POOL_SIZE.inc(size)

    def stop() -> None:
        event.remove(pool, "checkout", checked_out)
        event.remove(pool, "checkin", checked_in)
        POOL_SIZE.dec(size)
        if MULTIPROCESS_FOLDER in os.environ:
            # This process's gauges leave the sums.
            mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    return stop


# -- worker jobs -----------------------------------------------------------------------


def count_jobs(worker_settings: dict[str, Any]) -> dict[str, Any]:
    """arq worker settings whose jobs count their runs and failures in Redis."""
    worker_settings["functions"] = [
        replace(function, coroutine=_counted(function.name, function.coroutine))
        for function in worker_settings["functions"]
    ]
    worker_settings["cron_jobs"] = [
        replace(job, coroutine=_counted(job.name, job.coroutine))
        for job in worker_settings["cron_jobs"]
    ]
    return worker_settings


def _counted(name: str, job: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(job)
    async def counted(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        failed = True
        try:
            result = await job(ctx, *args, **kwargs)
            failed = False
            return result
        finally:
            await _count_job(ctx["redis"], name, failed=failed)

    return counted


async def _count_job(redis: ArqRedis, name: str, *, failed: bool) -> None:
    try:
        async with asyncio.timeout(1), redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(JOBS_RUN_KEY, name, 1)
            if failed:
                pipe.hincrby(JOBS_FAILED_KEY, name, 1)
            await pipe.execute()
    except Exception as exc:  # a lost count must not fail the job
        logger.warning("could not count job %s: %r", name, exc)


# -- the scrape ------------------------------------------------------------------------


async def _outbox_metrics(db: Database) -> list[Metric]:
    async with db.autocommit_engine.begin() as connection:
        pending, failed, live_rows = (await connection.execute(_OUTBOX_QUERY)).one()
    family = GaugeMetricFamily(
        "library_notifications",
        "Staff messages in the outbox by status (SENT estimated from table statistics).",
        labels=["status"],
    )
    family.add_metric(["PENDING"], pending)
    family.add_metric(["FAILED"], failed)
    family.add_metric(["SENT"], max((live_rows or 0) - pending - failed, 0))
    return [family]


async def _job_metrics(queue: ArqRedis | None) -> list[Metric]:
    if queue is None:
        return []
    async with queue.pipeline(transaction=False) as pipe:
        pipe.hgetall(JOBS_RUN_KEY)
        pipe.hgetall(JOBS_FAILED_KEY)
        run, failed = await pipe.execute()
    families: list[Metric] = []
    for name, documentation, counts in (
        ("library_jobs_run", "Worker jobs run, by job.", run),
        ("library_jobs_failed", "Worker jobs that raised, by job.", failed),
    ):
        family = CounterMetricFamily(name, documentation, labels=["job"])
        for job, count in sorted(counts.items()):
            family.add_metric([job.decode()], int(count))
        families.append(family)
    return families


async def _read(source: str, reading: Any) -> list[Metric]:
    """A figure that needs PostgreSQL or Redis: left out (and logged) if it does not come."""
    try:
        async with asyncio.timeout(SCRAPE_TIMEOUT_SECONDS):
            metrics: list[Metric] = await reading
            return metrics
    except Exception as exc:
        logger.warning("metrics: %s unavailable: %r", source, exc)
        return []


class _Snapshot:
    """Figures read for one scrape, as a collector."""

    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self._metrics


async def metrics_page(request: Request) -> Response:
    """Prometheus metrics."""
    token: str = request.app.state.settings.METRICS_TOKEN
    if token and not secrets.compare_digest(
        request.headers.get("authorization", "").encode(), f"Bearer {token}".encode()
    ):
        raise AuthenticationError("Send the metrics token as a bearer token.")
    state = request.app.state
    outbox, jobs = await asyncio.gather(
        _read("database", _outbox_metrics(state.db)), _read("redis", _job_metrics(state.queue))
    )
    registry = CollectorRegistry(auto_describe=False)
    if MULTIPROCESS_FOLDER in os.environ:
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call] # all API processes
    else:
        registry.register(REGISTRY)
    registry.register(_Snapshot(outbox + jobs))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def install_metrics(app: FastAPI) -> None:
    app.add_api_route("/metrics", metrics_page, include_in_schema=False)
    app.add_middleware(MetricsMiddleware)


@contextmanager
def shared_across_processes(workers: int) -> Iterator[None]:
    """For `run --workers N`: the API processes count into files in one fresh folder (unless
    PROMETHEUS_MULTIPROC_DIR names one already), so that any one can answer a scrape."""
    if workers <= 1 or MULTIPROCESS_FOLDER in os.environ:
        yield
        return
    folder = tempfile.mkdtemp(prefix="library-service-metrics-")
    os.environ[MULTIPROCESS_FOLDER] = folder  # the processes uvicorn spawns inherit it
    try:
        yield
    finally:
        os.environ.pop(MULTIPROCESS_FOLDER, None)
        shutil.rmtree(folder, ignore_errors=True)
