"""The daily overdue report: once per library day, at the report time, listing what is late,
due today and due tomorrow by the library's calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select, text

from library_service.borrowings import report
from library_service.borrowings.report import send_overdue_report
from library_service.core import clock
from library_service.models import Hold, HoldStatus, Notification
from library_service.worker import worker_settings

BORROWED = date(2026, 3, 1)


@pytest.fixture
def ctx(app, settings, db) -> dict[str, Any]:
    return {"db": db, "settings": settings, "redis": app.state.queue}


async def report_texts(db) -> list[str]:
    async with db.autocommit_sessionmaker() as session:
        return list(
            (await session.scalars(select(Notification.text).order_by(Notification.id))).all()
        )


async def lend(
    factory, loans: list[tuple[str, str, date]], returned: dict[str, date] | None = None
) -> None:
    """Each (email, title, due) a borrowing of its own member and book, made on 1 March;
    `returned` maps an email to the day that borrowing came back."""
    returned = returned or {}
    for email, title, due in loans:
        member = await factory.member(email=email)
        book = await factory.book(title=title, author="Leo Tolstoy")
        await factory.borrowing(
            member, book, borrowed=BORROWED, due=due, returned=returned.get(email)
        )


async def test_overdue_report_lists_late_and_due_tomorrow(ctx, factory, db, settings, monkeypatch):
    monkeypatch.setattr(settings, "LIBRARY_TIMEZONE", "Europe/Berlin")
    today = date(2026, 3, 10)
    await lend(
        factory,
        [
            ("late@example.com", "War and Peace", date(2026, 3, 7)),
            ("today@example.com", "Anna Karenina", today),
            ("tomorrow@example.com", "Resurrection", date(2026, 3, 11)),
            ("later@example.com", "Childhood", date(2026, 3, 12)),
            ("returned@example.com", "Hadji Murat", date(2026, 3, 5)),
        ],
        returned={"returned@example.com": date(2026, 3, 6)},
    )

    # 09:30 in Berlin on 10 March (08:30 UTC).
    with clock.frozen(datetime(2026, 3, 10, 8, 30, tzinfo=UTC)):
        assert await send_overdue_report(ctx) == "3 borrowing(s), 0 hold(s)"
    texts = await report_texts(db)
    assert len(texts) == 3
    assert "Overdue by 3 days" in texts[0] and "late@example.com" in texts[0]
    assert "War and Peace" in texts[0]
    assert "Due today" in texts[1] and "today@example.com" in texts[1]
    assert "Due tomorrow" in texts[2] and "tomorrow@example.com" in texts[2]


async def test_overdue_report_reads_its_loans_a_chunk_at_a_time(
    ctx, factory, db, settings, monkeypatch
):
    monkeypatch.setattr(report, "REPORT_CHUNK", 2)
    monkeypatch.setattr(settings, "LIBRARY_TIMEZONE", "UTC")
    # Two loans share a due day across the chunks' edge: the keyset is (due day, id).
    dues = [
        date(2026, 3, 5),
        date(2026, 3, 6),
        date(2026, 3, 6),
        date(2026, 3, 8),
        date(2026, 3, 9),
    ]
    await lend(factory, [(f"m{i}@example.com", f"Book {i}", due) for i, due in enumerate(dues)])

    with clock.frozen(datetime(2026, 3, 10, 9, 30, tzinfo=UTC)):
        assert await send_overdue_report(ctx) == "5 borrowing(s), 0 hold(s)"
    texts = await report_texts(db)
    assert [next(f"m{i}" for i in range(5) if f"m{i}@" in t) for t in texts] == [
        "m0",
        "m1",
        "m2",
        "m3",
        "m4",
    ]


async def test_report_lists_the_copies_put_aside_for_holds(ctx, factory, db):
    today = date(2026, 3, 10)
    book = await factory.book(title="Dune", inventory=0)
    for email, status, ready_until in [
        ("last-day@example.com", HoldStatus.READY, today),
        ("later@example.com", HoldStatus.READY, date(2026, 3, 12)),
        ("waiting@example.com", HoldStatus.WAITING, None),
        ("lapsed@example.com", HoldStatus.READY, date(2026, 3, 9)),  # the expiry job's
    ]:
        member = await factory.member(email=email)
        async with db.sessionmaker() as session, session.begin():
            session.add(
                Hold(book_id=book.id, user_id=member.id, status=status, ready_until=ready_until)
            )

    with clock.frozen(datetime(2026, 3, 10, 9, 30, tzinfo=UTC)):
        assert await send_overdue_report(ctx) == "0 borrowing(s), 2 hold(s)"
    assert await report_texts(db) == [
        "No borrowings overdue today!",
        "📦 Copies put aside for holds:\n"
        "• «Dune» for last-day@example.com until 2026-03-10 (last day)\n"
        "• «Dune» for later@example.com until 2026-03-12",
    ]


async def test_overdue_report_with_none_due(ctx, db):
    with clock.frozen(datetime(2026, 3, 10, 9, 30, tzinfo=UTC)):
        await send_overdue_report(ctx)
    assert await report_texts(db) == ["No borrowings overdue today!"]


async def test_overdue_report_runs_once_per_library_day(ctx, db):
    with clock.frozen(datetime(2026, 3, 10, 9, 30, tzinfo=UTC)):
        await send_overdue_report(ctx)
        assert await send_overdue_report(ctx) == "already sent"
    assert len(await report_texts(db)) == 1
    with clock.frozen(datetime(2026, 3, 11, 9, 30, tzinfo=UTC)):  # the next day: a new report
        await send_overdue_report(ctx)
    assert len(await report_texts(db)) == 2


async def test_overdue_report_uses_the_library_date_around_midnight(
    ctx, factory, db, settings, monkeypatch
):
    """23:30 UTC on 9 March is already 10 March in Tokyo: a loan due 9 March is a day late,
    one due 11 March is due tomorrow."""
    monkeypatch.setattr(settings, "LIBRARY_TIMEZONE", "Asia/Tokyo")
    monkeypatch.setattr(settings, "OVERDUE_REPORT_TIME", datetime(2026, 1, 1, 0, 0).time())
    await lend(
        factory,
        [
            ("a@example.com", "Kokoro", date(2026, 3, 9)),
            ("b@example.com", "Botchan", date(2026, 3, 11)),
        ],
    )
    with clock.frozen(datetime(2026, 3, 9, 23, 30, tzinfo=UTC)):
        await send_overdue_report(ctx)
    texts = await report_texts(db)
    assert "Overdue by 1 day" in texts[0] and "Kokoro" in texts[0]
    assert "Due tomorrow" in texts[1] and "Botchan" in texts[1]
    async with db.autocommit_sessionmaker() as session:
        day = await session.scalar(text("SELECT report_date FROM overdue_reports"))
    assert day == date(2026, 3, 10)


async def test_overdue_report_waits_for_the_report_time(ctx, db, settings, monkeypatch):
    monkeypatch.setattr(settings, "LIBRARY_TIMEZONE", "America/New_York")
    # 13:00 UTC is 08:00 in New York (EST), before the 09:00 report.
    with clock.frozen(datetime(2026, 3, 2, 13, 0, tzinfo=UTC)):
        assert await send_overdue_report(ctx) == "too early"
    assert await report_texts(db) == []


async def test_worker_schedules_the_report_and_polls(settings):
    jobs = {job.name: job for job in worker_settings(settings)["cron_jobs"]}
    report = jobs["notifications.overdue_report"]
    assert (report.hour, report.minute) == (9, 0)
    assert jobs["payments.poll_expired_sessions"].minute is None  # every minute
    assert jobs["notifications.relay"].minute is None
    assert jobs["payments.attach_missing_sessions"].minute is None
    assert worker_settings(settings)["timezone"].key == settings.LIBRARY_TIMEZONE
