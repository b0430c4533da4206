"""No list, search or sweep reads a whole large table: a guard against a missing index.

The test runs the API's lists and searches and the worker's sweeps on the (empty) test
database and records every statement they send. It then EXPLAINs each one, with its own
parameters, against temporary copies of the tables (same columns and indexes, shadowing the
real ones for this connection only) that hold tens of thousands of rows shaped like a
library's, vacuumed and analyzed: PostgreSQL then plans as it would for a large library,
where one sequential scan of borrowings or payments costs a quarter of a second. Any
sequential scan of books, users, borrowings, payments, holds or staff messages fails it,
but for one that a LIMIT stops early (see `sequential_scans`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from library_service.borrowings import reminders, report
from library_service.holds.repository import HoldRepository
from library_service.notifications.repository import NotificationRepository
from library_service.notifications.tasks import RELAY_BATCH
from library_service.payments.repository import PaymentRepository
from library_service.payments.tasks import POLL_BATCH
from library_service.web import idempotency
from tests.factories import TODAY

LARGE_TABLES = ("books", "users", "borrowings", "payments", "holds", "notifications")
WORDS = "ARRAY['Silent','River','Garden','Winter','Empire','Letters','Shadow','Harbor','Glass']"
NAMES = "ARRAY['Adams','Bondar','Chen','Dubois','Eriksen','Fischer','Garcia','Ito','Kowalski']"

# Rows in the copies: enough that reading a table whole costs more than any index path a
# list, a search or a sweep has, as on a large library (proportions as in bench/).
FILL = [
    f"""INSERT INTO books (id, title, author, cover, inventory, daily_fee, isbn, withdrawn)
    SELECT g, ({WORDS})[1 + g % 9] || ' ' || ({WORDS})[1 + (g / 9) % 9] || ' ' || g,
           ({NAMES})[1 + (g / 3) % 9], 'SOFT', g % 4, 1.50,
           '978' || lpad((g * 4973)::text, 10, '0'), g % 100 = 99
    FROM generate_series(1, 10000) g""",
    f"""INSERT INTO users (id, email, hashed_password, first_name, last_name, is_staff)
    SELECT g, 'reader' || g || '@example.org', 'x', 'Reader', ({NAMES})[1 + g % 9] || g,
           g = 1
    FROM generate_series(1, 10000) g""",
    """INSERT INTO borrowings (id, borrow_date, expected_return_date, actual_return_date,
                              book_id, user_id)
    SELECT g, DATE '2020-01-01' + g / 40, DATE '2020-01-15' + g / 40,
           CASE WHEN g <= 39600 THEN DATE '2020-01-10' + g / 40 END,
           1 + (g * 7) % 10000, 1 + (g * 13) % 10000
    FROM generate_series(1, 40000) g""",
    """INSERT INTO payments (id, status, type, borrowing_id, session_id,
                            session_expires_at, money_to_pay)
    SELECT g, CASE WHEN g > 39600 AND g % 4 = 0 THEN 'PENDING'
                   WHEN g > 39600 AND g % 4 = 1 THEN 'EXPIRED' ELSE 'PAID' END,
           CASE WHEN g % 20 = 0 THEN 'FINE' ELSE 'PAYMENT' END, g,
           CASE WHEN g % 800 <> 0 THEN 'cs_' || g END, now(), 1.50
    FROM generate_series(1, 40000) g""",
    """INSERT INTO holds (id, book_id, user_id, status, ready_until)
    SELECT g, 1 + (g * 31) % 10000, 1 + g % 10000,
           CASE WHEN g % 10 = 0 THEN 'WAITING' WHEN g % 25 = 1 THEN 'READY'
                WHEN g % 10 IN (2, 3) THEN 'CANCELLED' ELSE 'FULFILLED' END,
           DATE '2026-03-01' + g % 5
    FROM generate_series(1, 10000) g""",
    """INSERT INTO notifications (id, kind, text, status, next_attempt_at)
    SELECT g, 'borrowed', 'New borrowing #' || g, CASE WHEN g > 39950 THEN 'PENDING'
           WHEN g % 1000 = 7 THEN 'FAILED' ELSE 'SENT' END, now() - interval '1 day'
    FROM generate_series(1, 40000) g""",
    """INSERT INTO idempotency_keys (user_id, key, request_hash, expires_at)
    SELECT g % 10000, 'k' || g, '\\x00', now() + (g % 10 - 2) * interval '1 hour'
    FROM generate_series(1, 5000) g""",
]


@contextmanager
def recorded_statements(db: Any) -> Iterator[list[tuple[str, Any]]]:
    """Every statement sent through the application's engine while the block runs."""
    sent: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        sent.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)


async def drive_lists_and_searches(client: Any, factory: Any) -> None:
    staff, member = await factory.staff(), await factory.member()
    as_staff, as_member = factory.auth(staff), factory.auth(member)
    catalogue = [
        "",
        "?search=river",
        "?search=Kowalski&ordering=author",
        "?search=978-0-14-143958-7",
        "?search=0141439580",
        "?search=1439",
        "?title=garden&author=adams",
        "?available=true&ordering=-daily_fee",
        "?withdrawn=true",
        "?ordering=-title&offset=100",
    ]
    for query in catalogue:
        assert (await client.get(f"/api/books/{query}")).status_code == 200
    for path, queries, headers in [
        ("borrowings", ["", "?is_active=true", "?is_active=false", "?user_id=5"], as_staff),
        ("borrowings", ["", "?is_active=true"], as_member),
        ("holds", ["", "?book_id=7", "?status=READY", "?status=WAITING", "?user_id=5"], as_staff),
        ("holds", [""], as_member),
        (
            "payments",
            [
                "",
                "?status=PENDING",
                "?status=EXPIRED",
                "?type=FINE",
                "?user_id=5",
                "totals/",
                "totals/?since=2020-01-01&until=2020-12-31",
            ],
            as_staff,
        ),
        ("payments", [""], as_member),
        ("users", ["", "?search=kowalski", "?search=dubois", "?is_staff=true"], as_staff),
    ]:
        for query in queries:
            response = await client.get(f"/api/{path}/{query}", headers=headers)
            assert response.status_code == 200, (path, query, response.text)


async def drive_sweeps(db: Any, settings: Any) -> None:
    """The statements the worker's sweeps choose their work with (each job's first read)."""
    async with db.autocommit_sessionmaker() as session:
        await reminders.loans_to_remind(
            session, today=TODAY, settings=settings, after=0, batch=reminders.BATCH
        )
        await report.borrowings_due_by(session, TODAY + timedelta(days=1))
        await report.borrowings_due_by(session, TODAY + timedelta(days=1), after=(TODAY, 1))
        await report.holds_put_aside(session, from_day=TODAY)
        await HoldRepository(session).uncollected(today=TODAY, limit=100)
        payments = PaymentRepository(session)
        await payments.open_sessions(limit=POLL_BATCH)
        await payments.pending_without_session(limit=POLL_BATCH)
    async with db.sessionmaker() as session, session.begin():
        await NotificationRepository(session).due_for_relay(limit=RELAY_BATCH)
    await idempotency.purge_expired_keys({"db": db})


def sequential_scans(plan: dict[str, Any], parent: dict[str, Any] | None = None) -> Iterator[str]:
    """The large tables the plan reads whole. A scan right under a LIMIT that the planner
    expects to cut it short (a count capped at 1,001 rows of a broad filter) reads about as
    many rows as the limit, whatever the table's size: that one is bounded, not whole."""
    if plan.get("Node Type") == "Seq Scan" and plan.get("Relation Name") in LARGE_TABLES:
        cut_short = (
            parent is not None
            and parent["Node Type"] == "Limit"
            and parent["Plan Rows"] < plan["Plan Rows"]
        )
        if not cut_short:
            yield plan["Relation Name"]
    for child in plan.get("Plans", ()):
        yield from sequential_scans(child, plan)


def _is_explainable(statement: str) -> bool:
    verb = statement.lstrip().split(None, 1)[0].upper()
    return verb in {"SELECT", "UPDATE", "DELETE", "WITH"} and any(
        table in statement for table in LARGE_TABLES
    )


@pytest.mark.usefixtures("frozen_today")
async def test_no_list_search_or_sweep_reads_a_large_table_whole(client, factory, db, settings):
    with recorded_statements(db) as sent:
        await drive_lists_and_searches(client, factory)
        await drive_sweeps(db, settings)
    statements = [(sql, parameters) for sql, parameters in sent if _is_explainable(sql)]
    assert len(statements) > 40  # the drive above really ran

    failures = []
    async with db.engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        for table in (*LARGE_TABLES, "idempotency_keys"):
            await autocommit.exec_driver_sql(
                f"CREATE TEMPORARY TABLE {table} (LIKE public.{table} INCLUDING ALL)"
            )
        try:
            for fill in FILL:
                await autocommit.exec_driver_sql(fill)
            await autocommit.exec_driver_sql(
                "VACUUM ANALYZE " + ", ".join(f"pg_temp.{t}" for t in LARGE_TABLES)
            )
            for sql, parameters in statements:
                explained = await autocommit.exec_driver_sql(
                    "EXPLAIN (FORMAT JSON) " + sql, parameters
                )
                plan = explained.scalar_one()
                plan = json.loads(plan) if isinstance(plan, str) else plan
                if scans := sorted(set(sequential_scans(plan[0]["Plan"]))):
                    failures.append(
                        f"sequential scan of {', '.join(scans)}:\n{sql}\n{parameters}\n"
                    )
        finally:
            for table in (*LARGE_TABLES, "idempotency_keys"):
                await autocommit.exec_driver_sql(f"DROP TABLE IF EXISTS pg_temp.{table}")
    assert not failures, "\n".join(failures)
