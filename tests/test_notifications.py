"""Staff notifications: outbox rows, delivery through the worker, Telegram failures, the
daily overdue report. Real Redis and PostgreSQL; Telegram faked at the HTTP boundary."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from arq import Retry
from arq.connections import ArqRedis
from arq.worker import Worker
from sqlalchemy import select, text

from library_service.core import clock
from library_service.core.queue import connect_queue
from library_service.dev.embedded import DATA_DIR, EmbeddedRedis
from library_service.models import Borrowing, Notification
from library_service.notifications.tasks import (
    deliver_notification,
    relay_notifications,
    send_overdue_report,
)
from library_service.notifications.telegram import TelegramClient
from library_service.worker import worker_settings

MONDAY = datetime(2026, 3, 2, 12, tzinfo=UTC)


@pytest.fixture
def telegram(stripe_mock):
    """Telegram's sendMessage, answering 200 unless a test sets other answers."""
    route = stripe_mock.route(host="telegram.test", path__regex=r"/bot.+/sendMessage")
    route.return_value = httpx.Response(200, json={"ok": True, "result": {}})
    return route


@pytest.fixture
async def queue(app) -> ArqRedis:
    await app.state.queue.flushdb()  # jobs queued by earlier tests point at truncated rows
    return app.state.queue


async def run_worker(settings, redis_url: str | None = None) -> Worker:
    """Run the worker in burst mode until the queue is empty (cron jobs left out)."""
    options = worker_settings(settings)
    options["cron_jobs"] = []
    if redis_url is not None:
        from library_service.core.queue import redis_settings

        options["redis_settings"] = redis_settings(redis_url)
    worker = Worker(**options, burst=True, handle_signals=False, poll_delay=0.01)
    try:
        await worker.async_run()
    finally:
        await worker.close()
    return worker


def sent_texts(route) -> list[str]:
    return [json.loads(call.request.content)["text"] for call in route.calls]


async def notifications(db) -> list[Notification]:
    async with db.autocommit_sessionmaker() as session:
        return list((await session.scalars(select(Notification).order_by(Notification.id))).all())


@pytest.fixture
def ctx(app, settings, db) -> dict[str, Any]:
    return {
        "db": db,
        "settings": settings,
        "telegram": TelegramClient(settings),
        "stripe": app.state.stripe,
        "redis": app.state.queue,
    }


async def borrow(client, factory, member, book, until: str) -> dict[str, Any]:
    response = await client.post(
        "/api/borrowings/",
        json={"book": book.id, "expected_return_date": until},
        headers=factory.auth(member),
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_each_event_sends_exactly_one_message(
    client, factory, browser, settings, telegram, queue, db
):
    member = await factory.user(email="reader@example.com")
    book = await factory.book(title="Emma", author="Jane Austen", daily_fee=Decimal("1.50"))
    with clock.frozen(MONDAY):
        borrowing = await borrow(client, factory, member, book, "2026-03-04")
        session_url = borrowing["payments"][0]["session_url"]
        paid = await browser.post(session_url + "/pay")
        success = await client.get(paid.headers["location"])
        assert success.status_code == 200
    with clock.frozen(MONDAY + timedelta(days=5)):  # 3 days late
        returned = await client.post(
            f"/api/borrowings/{borrowing['id']}/return/", headers=factory.auth(member)
        )
        assert returned.status_code == 200

    kinds = [n.kind for n in await notifications(db)]
    assert kinds == ["borrowing_created", "payment_paid", "borrowing_returned"]

    await run_worker(settings)
    texts = sent_texts(telegram)
    assert len(texts) == 3
    # Jobs run concurrently, so messages may arrive in any order.
    [created] = [t for t in texts if "New borrowing" in t]
    [payment] = [t for t in texts if "Payment received" in t]
    [returned_text] = [t for t in texts if "Returned" in t]
    assert "«Emma» by Jane Austen" in created
    assert "reader@example.com" in created and "2026-03-02 to 2026-03-04" in created
    assert "$3.00" in created
    assert "Payment received: $3.00 borrowing fee" in payment and "reader@example.com" in payment
    assert "Returned" in returned_text and "3 days late, fine $9.00" in returned_text
    assert all(n.status == "SENT" for n in await notifications(db))

    # Running the worker again sends nothing more.
    await run_worker(settings)
    assert len(telegram.calls) == 3


async def test_on_time_return_message(client, factory, settings, telegram, queue, db):
    member = await factory.user()
    book = await factory.book()
    with clock.frozen(MONDAY):
        borrowing = await borrow(client, factory, member, book, "2026-03-04")
        await client.post(
            f"/api/borrowings/{borrowing['id']}/return/", headers=factory.auth(member)
        )
    await run_worker(settings)
    [returned] = [t for t in sent_texts(telegram) if "Returned" in t]
    assert "on time" in returned and "fine" not in returned


async def test_telegram_failing_twice_then_ok_delivers_once(
    client, factory, settings, telegram, queue, db
):
    telegram.side_effect = [
        httpx.Response(500, json={"ok": False, "description": "Internal"}),
        httpx.ConnectError("connection refused"),
        httpx.Response(200, json={"ok": True, "result": {}}),
    ]
    member = await factory.user()
    book = await factory.book()
    with clock.frozen(MONDAY):
        await borrow(client, factory, member, book, "2026-03-04")
    await run_worker(settings)

    assert len(telegram.calls) == 3
    [row] = await notifications(db)
    assert row.status == "SENT" and row.attempts == 3 and row.sent_at is not None


async def test_rate_limit_honours_retry_after(ctx, settings, telegram, db):
    telegram.return_value = httpx.Response(
        429,
        json={"ok": False, "description": "Too Many Requests", "parameters": {"retry_after": 7}},
    )
    async with db.sessionmaker() as session, session.begin():
        session.add(Notification(kind="test", text="hello"))
    [row] = await notifications(db)

    with pytest.raises(Retry) as retry:
        await deliver_notification(ctx, row.id)
    assert retry.value.defer_score == 7000  # arq defers the job by retry_after, in ms

    [row] = await notifications(db)
    # A pause Telegram asked for is not an attempt: a burst of them never fails a message.
    assert row.status == "PENDING" and row.attempts == 0
    async with db.autocommit_sessionmaker() as session:
        wait = await session.scalar(
            text("SELECT extract(epoch FROM next_attempt_at - now()) FROM notifications")
        )
    assert 6 <= float(wait) <= 7

    # The pause holds for every message: none is sent before it ends.
    with pytest.raises(Retry) as again:
        await deliver_notification(ctx, row.id)
    assert 6000 <= again.value.defer_score <= 7000
    assert len(telegram.calls) == 1


async def test_gives_up_once_the_message_is_too_old(ctx, settings, telegram, db, monkeypatch):
    monkeypatch.setattr(settings, "NOTIFY_GIVE_UP_HOURS", 1)
    telegram.return_value = httpx.Response(502, text="Bad Gateway")
    async with db.sessionmaker() as session, session.begin():
        session.add(Notification(kind="test", text="hello"))
    [row] = await notifications(db)

    with pytest.raises(Retry):
        await deliver_notification(ctx, row.id)
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            text("UPDATE notifications SET created_at = now() - interval '61 minutes'")
        )
    assert await deliver_notification(ctx, row.id) == "failed"
    [row] = await notifications(db)
    assert row.status == "FAILED" and "502" in row.last_error and row.attempts == 2
    assert await deliver_notification(ctx, row.id) == "not pending"
    assert len(telegram.calls) == 2


async def test_a_job_run_twice_sends_once(ctx, telegram, db):
    async with db.sessionmaker() as session, session.begin():
        session.add(Notification(kind="test", text="once"))
    [row] = await notifications(db)
    assert await deliver_notification(ctx, row.id) == "sent"
    assert await deliver_notification(ctx, row.id) == "not pending"
    assert sent_texts(telegram) == ["once"]


async def test_a_message_held_by_another_sender_is_not_sent_twice(ctx, telegram, db):
    """Two workers racing for one message: the lease lets only one send it."""
    async with db.sessionmaker() as session, session.begin():
        session.add(Notification(kind="test", text="raced"))
        await session.flush()
    [row] = await notifications(db)
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            text("UPDATE notifications SET locked_until = now() + interval '1 minute'")
        )
    assert await deliver_notification(ctx, row.id) == "not pending"
    assert telegram.calls.call_count == 0


async def test_without_a_token_messages_are_logged(
    ctx, settings, telegram, db, monkeypatch, caplog
):
    monkeypatch.setattr(settings, "TELEGRAM_BOT_TOKEN", "")
    async with db.sessionmaker() as session, session.begin():
        session.add(Notification(kind="test", text="to the console"))
    [row] = await notifications(db)
    with caplog.at_level("INFO"):
        assert await deliver_notification(ctx, row.id) == "sent"
    assert "to the console" in caplog.text
    assert telegram.calls.call_count == 0


async def test_redis_down_while_borrowing_loses_nothing(
    app, client, factory, settings, telegram, db
):
    redis = EmbeddedRedis(DATA_DIR / "redis-outage-test").start()
    outage_queue = connect_queue(redis.url)
    usual_queue, app.state.queue = app.state.queue, outage_queue
    member = await factory.user()
    book = await factory.book()
    try:
        redis.stop()
        with clock.frozen(MONDAY):
            response = await client.post(
                "/api/borrowings/",
                json={"book": book.id, "expected_return_date": "2026-03-04"},
                headers=factory.auth(member),
            )
        assert response.status_code == 201  # the member is not failed for our outage
        [row] = await notifications(db)
        assert row.status == "PENDING"

        redis.start()  # same port: Redis is back, with nothing queued
        ctx = {"db": db, "settings": settings, "redis": connect_queue(redis.url)}
        assert await relay_notifications(ctx) == 1
        await ctx["redis"].aclose()
        await run_worker(settings, redis.url)
    finally:
        app.state.queue = usual_queue
        await outage_queue.aclose()
        redis.stop()
    assert len(telegram.calls) == 1
    [row] = await notifications(db)
    assert row.status == "SENT"


async def test_relay_skips_messages_already_sent_or_waiting(ctx, db, queue):
    async with db.sessionmaker() as session, session.begin():
        session.add(Notification(kind="test", text="sent", status="SENT"))
        session.add(
            Notification(
                kind="test",
                text="backing off",
                next_attempt_at=datetime.now(UTC) + timedelta(minutes=5),
            )
        )
        session.add(Notification(kind="test", text="due"))
    assert await relay_notifications(ctx) == 1
    assert await queue.zcard("arq:queue") == 1


# -- the daily overdue report -------------------------------------------------------------


async def add_borrowing(db, factory, *, email: str, title: str, borrowed: date, due: date) -> int:
    member = await factory.user(email=email)
    book = await factory.book(title=title, author="Leo Tolstoy")
    async with db.sessionmaker() as session, session.begin():
        borrowing = Borrowing(
            borrow_date=borrowed, expected_return_date=due, book_id=book.id, user_id=member.id
        )
        session.add(borrowing)
        await session.flush()
        return borrowing.id


async def test_overdue_report_lists_late_and_due_tomorrow(ctx, factory, db, settings, monkeypatch):
    monkeypatch.setattr(settings, "LIBRARY_TIMEZONE", "Europe/Berlin")
    today = date(2026, 3, 10)
    await add_borrowing(
        db,
        factory,
        email="late@example.com",
        title="War and Peace",
        borrowed=date(2026, 3, 1),
        due=date(2026, 3, 7),
    )
    await add_borrowing(
        db,
        factory,
        email="today@example.com",
        title="Anna Karenina",
        borrowed=date(2026, 3, 1),
        due=today,
    )
    await add_borrowing(
        db,
        factory,
        email="tomorrow@example.com",
        title="Resurrection",
        borrowed=date(2026, 3, 1),
        due=date(2026, 3, 11),
    )
    await add_borrowing(
        db,
        factory,
        email="later@example.com",
        title="Childhood",
        borrowed=date(2026, 3, 1),
        due=date(2026, 3, 12),
    )
    returned = await add_borrowing(
        db,
        factory,
        email="returned@example.com",
        title="Hadji Murat",
        borrowed=date(2026, 3, 1),
        due=date(2026, 3, 5),
    )
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            text("UPDATE borrowings SET actual_return_date = '2026-03-06' WHERE id = :id"),
            {"id": returned},
        )

    # 09:30 in Berlin on 10 March (08:30 UTC).
    with clock.frozen(datetime(2026, 3, 10, 8, 30, tzinfo=UTC)):
        assert await send_overdue_report(ctx) == "3 borrowing(s)"
    texts = [n.text for n in await notifications(db)]
    assert len(texts) == 3
    assert "Overdue by 3 days" in texts[0] and "late@example.com" in texts[0]
    assert "War and Peace" in texts[0]
    assert "Due today" in texts[1] and "today@example.com" in texts[1]
    assert "Due tomorrow" in texts[2] and "tomorrow@example.com" in texts[2]


async def test_overdue_report_with_none_due(ctx, db):
    with clock.frozen(datetime(2026, 3, 10, 9, 30, tzinfo=UTC)):
        await send_overdue_report(ctx)
    assert [n.text for n in await notifications(db)] == ["No borrowings overdue today!"]


async def test_overdue_report_runs_once_per_library_day(ctx, db):
    with clock.frozen(datetime(2026, 3, 10, 9, 30, tzinfo=UTC)):
        await send_overdue_report(ctx)
        assert await send_overdue_report(ctx) == "already sent"
    assert len(await notifications(db)) == 1
    with clock.frozen(datetime(2026, 3, 11, 9, 30, tzinfo=UTC)):  # the next day: a new report
        await send_overdue_report(ctx)
    assert len(await notifications(db)) == 2


async def test_overdue_report_uses_the_library_date_around_midnight(
    ctx, factory, db, settings, monkeypatch
):
    """23:30 UTC on 9 March is already 10 March in Tokyo: a loan due 9 March is a day late,
    one due 11 March is due tomorrow."""
    monkeypatch.setattr(settings, "LIBRARY_TIMEZONE", "Asia/Tokyo")
    monkeypatch.setattr(settings, "OVERDUE_REPORT_TIME", datetime(2026, 1, 1, 0, 0).time())
    await add_borrowing(
        db,
        factory,
        email="a@example.com",
        title="Kokoro",
        borrowed=date(2026, 3, 1),
        due=date(2026, 3, 9),
    )
    await add_borrowing(
        db,
        factory,
        email="b@example.com",
        title="Botchan",
        borrowed=date(2026, 3, 1),
        due=date(2026, 3, 11),
    )
    with clock.frozen(datetime(2026, 3, 9, 23, 30, tzinfo=UTC)):
        await send_overdue_report(ctx)
    texts = [n.text for n in await notifications(db)]
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
    assert await notifications(db) == []


async def test_worker_schedules_the_report_and_polls(settings):
    jobs = {job.name: job for job in worker_settings(settings)["cron_jobs"]}
    report = jobs["notifications.overdue_report"]
    assert (report.hour, report.minute) == (9, 0)
    assert jobs["payments.poll_expired_sessions"].minute is None  # every minute
    assert jobs["notifications.relay"].minute is None
    assert jobs["payments.attach_missing_sessions"].minute is None
    assert worker_settings(settings)["timezone"].key == settings.LIBRARY_TIMEZONE
