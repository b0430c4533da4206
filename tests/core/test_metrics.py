"""GET /metrics: requests by route template, the outbox backlog, worker jobs, the pool."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from arq import func
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError
from sqlalchemy import text

from library_service.core.config import Settings
from library_service.core.db import Database
from library_service.core.outages import Outage
from library_service.main import create_app
from library_service.models import Notification
from library_service.notifications import jobs as notification_jobs
from library_service.web import metrics
from library_service.worker import worker_settings
from tests.factories import PRODUCTION

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
BORROWING_ROUTE = "/api/borrowings/{borrowing_id}/"


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_requests_count_under_their_route_template(client):
    before = await scrape(client)
    for path in ("/api/borrowings/12345/", "/api/borrowings/67890"):
        assert (await client.get(path)).status_code == 401
    assert (await client.get("/no/such/page/")).status_code == 404
    after = await scrape(client)

    labels = {"method": "GET", "route": BORROWING_ROUTE}
    requests = "library_http_requests_total"
    assert (
        value(after, requests, **labels, status="401")
        - value(before, requests, **labels, status="401")
        == 2
    )
    timed = "library_http_request_duration_seconds_count"
    assert value(after, timed, **labels) - value(before, timed, **labels) == 2
    assert value(after, requests, method="GET", route="unmatched", status="404") >= 1
    routes = {dict(labels_).get("route", "") for _, labels_ in after}
    assert not any("12345" in route or "67890" in route for route in routes)


async def test_mounted_routes_count_under_their_full_path(client, factory):
    """The admin's pages read as /admin/… (a sign-in redirect, answered before the admin's
    own routing, under the mount), and a path convertor stays out of the label."""
    staff = await factory.staff()
    before = await scrape(client)
    assert (await client.get("/admin/")).status_code == 303  # to the sign-in page
    assert (await client.get("/admin/login")).status_code == 200
    assert (await client.get("/api/users/7/", headers=factory.auth(staff))).status_code == 404
    after = await scrape(client)
    requests = "library_http_requests_total"
    for route, status in (
        ("/admin/{path}", "303"),
        ("/admin/login", "200"),
        ("/api/users/{user_id}/", "404"),
    ):
        labels = {"method": "GET", "route": route, "status": status}
        assert value(after, requests, **labels) - value(before, requests, **labels) == 1, route
    routes = {dict(labels_).get("route", "") for _, labels_ in after}
    assert "/login" not in routes
    assert not [route for route in routes if ":" in route]


async def test_an_unusual_method_does_not_become_a_label(client):
    await client.request("BREW", "/api/books/")
    samples = await scrape(client)
    assert (
        value(
            samples,
            "library_http_requests_total",
            method="other",
            route="/api/books/",
            status="405",
        )
        >= 1
    )
    assert not any(dict(labels).get("method") == "BREW" for _, labels in samples)


async def test_the_outbox_backlog_by_status(client, db):
    async with db.sessionmaker() as session, session.begin():
        session.add_all(
            [
                Notification(kind="test", text="one", status="PENDING"),
                Notification(kind="test", text="two", status="PENDING"),
                Notification(kind="test", text="three", status="FAILED"),
                Notification(kind="test", text="four", status="SENT"),
            ]
        )
    samples = await scrape(client)
    assert value(samples, "library_notifications", status="PENDING") == 2
    assert value(samples, "library_notifications", status="FAILED") == 1
    assert ("library_notifications", frozenset({("status", "SENT")})) in samples


async def test_the_outbox_counts_use_the_partial_indexes(db):
    async with db.sessionmaker() as session:
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        for status in ("PENDING", "FAILED"):
            plan = "\n".join(
                (
                    await session.execute(
                        text(
                            f"EXPLAIN SELECT count(*) FROM notifications WHERE status = '{status}'"
                        )
                    )
                ).scalars()
            )
            assert "ix_notifications_" in plan, plan


async def test_worker_jobs_run_and_failed_show(client, app, db, settings):
    async def broken(ctx: dict[str, Any]) -> None:
        raise RuntimeError("a failing job")

    ctx = {
        "db": db,
        "redis": app.state.queue,
        "settings": settings,
        "stripe": app.state.stripe,  # these two: what the worker's startup puts there
        "database_outage": Outage("PostgreSQL"),
    }
    relay = next(
        job for job in worker_settings(settings)["cron_jobs"] if job.name == notification_jobs.RELAY
    )
    (failing,) = metrics.count_jobs(
        {"functions": [func(broken, name="test.broken")], "cron_jobs": []}
    )["functions"]

    assert await relay.coroutine(ctx) == 0
    with pytest.raises(RuntimeError):
        await failing.coroutine(ctx)
    with pytest.raises(RuntimeError):
        await failing.coroutine(ctx)

    samples = await scrape(client)
    assert value(samples, "library_jobs_run_total", job=notification_jobs.RELAY) == 1
    assert value(samples, "library_jobs_failed_total", job=notification_jobs.RELAY) == 0
    assert value(samples, "library_jobs_run_total", job="test.broken") == 2
    assert value(samples, "library_jobs_failed_total", job="test.broken") == 2


def test_every_worker_job_is_counted(settings):
    arq_settings = worker_settings(settings)
    for job in [*arq_settings["functions"], *arq_settings["cron_jobs"]]:
        assert hasattr(job.coroutine, "__wrapped__"), job.name  # the counting wrapper


async def test_the_pool_in_use_and_its_size(settings):
    def sample(name: str) -> float:
        return metrics.REGISTRY.get_sample_value(name) or 0.0

    size, in_use = sample("library_db_pool_size"), sample("library_db_pool_connections_in_use")
    database = Database.connect(settings.DATABASE_URL, settings, pool_size=3)
    stop = metrics.watch_pool(database)
    try:
        assert sample("library_db_pool_size") == size + 3
        async with database.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            assert sample("library_db_pool_connections_in_use") == in_use + 1
        assert sample("library_db_pool_connections_in_use") == in_use
    finally:
        stop()
        await database.dispose()
    assert sample("library_db_pool_size") == size


async def test_a_checkin_of_a_checkout_never_counted_leaves_the_gauge_alone(settings):
    """A checkout refused for a closed connection whose reconnect failed (PostgreSQL
    restarting) is still checked in: the gauge must not drop below what is out."""
    sample = metrics.REGISTRY.get_sample_value
    database = Database.connect(settings.DATABASE_URL, settings, pool_size=1)
    stop = metrics.watch_pool(database)
    pool = database.engine.sync_engine.pool
    try:
        in_use = sample("library_db_pool_connections_in_use") or 0.0
        record, open_connection = (
            object(),
            SimpleNamespace(_connection=SimpleNamespace(is_closed=lambda: False)),
        )
        pool.dispatch.checkin(open_connection, record)  # no checkout counted before it
        assert sample("library_db_pool_connections_in_use") == in_use
        pool.dispatch.checkout(open_connection, record, None)
        assert sample("library_db_pool_connections_in_use") == in_use + 1
        pool.dispatch.checkin(open_connection, record)
        pool.dispatch.checkin(open_connection, record)
        assert sample("library_db_pool_connections_in_use") == in_use
    finally:
        stop()
        await database.dispose()


async def test_the_api_pool_is_on_the_page(client, settings):
    samples = await scrape(client)
    assert value(samples, "library_db_pool_size") >= settings.DB_POOL_SIZE
    assert value(samples, "library_db_pool_connections_in_use") >= 0


async def test_a_metrics_token_is_asked_for_when_set(client, settings, monkeypatch):
    monkeypatch.setattr(settings, "METRICS_TOKEN", "scrape-me")
    anonymous = await client.get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "not_authenticated"
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 401
    assert await scrape(client, Authorization="Bearer scrape-me")


def paths_of(settings: Settings) -> set[str]:
    return {
        getattr(route, "path", "") for route in create_app(settings, configure_logs=False).routes
    }


def test_metrics_are_off_in_production_unless_asked_for_with_a_token():
    production = Settings(_env_file=None, **PRODUCTION)  # type: ignore[arg-type]
    assert not production.metrics_enabled
    assert "/metrics" not in paths_of(production)
    with pytest.raises(ValidationError, match="METRICS_TOKEN"):
        Settings(_env_file=None, **PRODUCTION, METRICS_ENABLED=True)  # type: ignore[arg-type]
    enabled = Settings(
        _env_file=None,  # type: ignore[arg-type]
        **PRODUCTION,
        METRICS_ENABLED=True,
        METRICS_TOKEN="t" * 32,
    )
    assert "/metrics" in paths_of(enabled)


def test_metrics_are_on_in_development():
    assert Settings(_env_file=None).metrics_enabled  # type: ignore[call-arg]
    assert not Settings(_env_file=None, METRICS_ENABLED=False).metrics_enabled  # type: ignore[call-arg]


async def test_counts_of_several_api_processes_add_up(client, tmp_path: Path, monkeypatch):
    """`run --workers N`: each process writes its counts to the shared folder, and a
    scrape of any one of them reads them all."""
    count_one_request = (
        "from library_service.web.metrics import REQUESTS, REQUEST_SECONDS\n"
        "REQUESTS.labels('GET', '/api/elsewhere/', '200').inc()\n"
        "REQUEST_SECONDS.labels('GET', '/api/elsewhere/').observe(0.01)\n"
    )
    environment = {**os.environ, metrics.MULTIPROCESS_FOLDER: str(tmp_path)}
    for _ in range(2):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", count_one_request, env=environment
        )
        assert await process.wait() == 0
    monkeypatch.setenv(metrics.MULTIPROCESS_FOLDER, str(tmp_path))
    samples = await scrape(client)
    labels = {"method": "GET", "route": "/api/elsewhere/"}
    assert value(samples, "library_http_requests_total", **labels, status="200") == 2
    assert value(samples, "library_http_request_duration_seconds_count", **labels) == 2


def test_run_with_several_processes_shares_a_fresh_folder(monkeypatch):
    monkeypatch.delenv(metrics.MULTIPROCESS_FOLDER, raising=False)
    with metrics.shared_across_processes(1):
        assert metrics.MULTIPROCESS_FOLDER not in os.environ
    with metrics.shared_across_processes(2):
        folder = Path(os.environ[metrics.MULTIPROCESS_FOLDER])
        assert folder.is_dir() and not any(folder.iterdir())
    assert metrics.MULTIPROCESS_FOLDER not in os.environ
    assert not folder.exists()
