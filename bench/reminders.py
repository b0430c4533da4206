"""The daily reminder sweep over many active loans: its time and its memory.

    .venv/bin/python bench/reminders.py                  # 100,000 active loans, all due a reminder
    .venv/bin/python bench/reminders.py --loans 20000

A fresh `library_bench` database (DATABASE_URL's server or the embedded one in
.data/postgres-bench) and Redis (REDIS_URL or embedded), seeded by COPY: 10,000 members,
1,000 books and `--loans` active loans whose due dates all call for a reminder today (due in
DUE_REMINDER_DAYS, due today, or overdue on a reminder day): the worst case, one notice per
loan. Then `remind()` runs as the worker's cron runs it (its delivery jobs queued in Redis),
and once more, which must write nothing. Reported: wall time, notices written, the peak of
Python allocations (tracemalloc) and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
import tracemalloc
from contextlib import ExitStack
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from seed import connect
from stack import start_database, start_redis

from library_service.borrowings.reminders import remind
from library_service.core import clock
from library_service.core.config import Settings
from library_service.core.db import Database, UnitOfWork
from library_service.core.queue import connect_queue

MEMBERS = 10_000
BOOKS = 1_000


def due_dates(today: date, settings: Settings) -> list[date]:
    """Due dates that each call for a reminder today."""
    every = settings.OVERDUE_REMINDER_DAYS
    overdue = [today - timedelta(days=1 + every * n) for n in range(8)]
    return [today + timedelta(days=settings.DUE_REMINDER_DAYS), today, *overdue]


async def seed(url: str, loans: int, today: date, settings: Settings) -> None:
    connection = await connect(url)
    try:
        await connection.copy_records_to_table(
            "users",
            records=[(f"member{n}@bench.example.com", "x" * 60) for n in range(MEMBERS)],
            columns=["email", "hashed_password"],
        )
        await connection.copy_records_to_table(
            "books",
            records=[
                (f"Book {n}", f"Author {n % 97}", "SOFT", 50, Decimal("1.25")) for n in range(BOOKS)
            ],
            columns=["title", "author", "cover", "inventory", "daily_fee"],
        )
        user_ids = [r["id"] for r in await connection.fetch("SELECT id FROM users ORDER BY id")]
        book_ids = [r["id"] for r in await connection.fetch("SELECT id FROM books ORDER BY id")]
        dues = due_dates(today, settings)
        records = []
        for n in range(loans):
            due = dues[n % len(dues)]
            records.append(
                (
                    min(due, today) - timedelta(days=10),
                    due,
                    book_ids[n % BOOKS],
                    user_ids[n % MEMBERS],
                )
            )
        await connection.copy_records_to_table(
            "borrowings",
            records=records,
            columns=["borrow_date", "expected_return_date", "book_id", "user_id"],
        )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


async def sweep(settings: Settings, today: date) -> tuple[int, float]:
    db = Database.connect(settings.DATABASE_URL, settings, pool_size=2)
    queue = connect_queue(settings.REDIS_URL)
    try:
        started = time.perf_counter()
        written = await remind(UnitOfWork(db, queue), settings, today=today)
        return written, time.perf_counter() - started
    finally:
        await queue.aclose()
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loans", type=int, default=100_000)
    arguments = parser.parse_args()
    with ExitStack() as stack:
        database = start_database()
        redis = start_redis(stack)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            DATABASE_URL=database.url,
            REDIS_URL=redis.url,
        )
        today = clock.today(settings.timezone)
        print(f"seeding {arguments.loans:,} active loans …", flush=True)
        asyncio.run(seed(database.url, arguments.loans, today, settings))

        tracemalloc.start()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        written, seconds = asyncio.run(sweep(settings, today))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        again, seconds_again = asyncio.run(sweep(settings, today))

    print(
        f"loans {arguments.loans:,}: {written:,} reminders written in {seconds:.1f} s "
        f"({written / seconds:,.0f}/s), delivery jobs queued in Redis\n"
        f"Python allocations peak {peak / 2**20:.1f} MiB (tracemalloc); process peak RSS "
        f"{rss_after / 1024:.0f} MiB (before the sweep {rss_before / 1024:.0f} MiB)\n"
        f"run again: {again} written in {seconds_again:.1f} s"
    )
    if again:
        sys.exit("a second sweep wrote reminders again")


if __name__ == "__main__":
    main()
