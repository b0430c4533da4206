"""Staff notifications: outbox rows written with their event, delivered once through the
worker, whatever Telegram or Redis do. Real Redis and PostgreSQL; Telegram faked at the HTTP
boundary."""

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

from library_service.core.queue import connect_queue, redis_settings
from library_service.dev.embedded import EmbeddedRedis
from library_service.models import Notification
from library_service.notifications.tasks import deliver_notification, relay_notifications
from library_service.notifications.telegram import TelegramClient, environment_proxy
from library_service.worker import worker_settings
from tests.conftest import TELEGRAM_BASE
from tests.factories import on_day, pay, the_payment
from tests.servers import data_folder

DUE = date(2026, 3, 4)  # two days after the borrowings here, made on day 1 (Monday)


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


@pytest.fixture
def ctx(app, settings, db) -> dict[str, Any]:
    return {
        "db": db,
        "settings": settings,
        "telegram": TelegramClient(settings),
        "stripe": app.state.stripe,
        "redis": app.state.queue,
    }


async def run_worker(settings, redis_url: str | None = None) -> Worker:
    """Run the worker in burst mode until the queue is empty (cron jobs left out)."""
    options = worker_settings(settings)
    options["cron_jobs"] = []
    if redis_url is not None:
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


# -- events through the worker --------------------------------------------------------------


async def test_each_event_sends_exactly_one_message(
    client, factory, browser, settings, telegram, queue, db
):
    member = await factory.member(email="reader@example.com")
    book = await factory.book(title="Emma", author="Jane Austen", daily_fee=Decimal("1.50"))
    with on_day(1):
        borrowing = await factory.borrow_ok(client, member, book, until=DUE)
        success = await pay(client, browser, the_payment(borrowing)["session_url"])
        assert success.status_code == 200
    returned = await factory.return_book(client, member, borrowing["id"], on=6)  # 3 days late
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
    member = await factory.member()
    book = await factory.book()
    with on_day(1):
        borrowing = await factory.borrow_ok(client, member, book, until=DUE)
        await factory.return_book(client, member, borrowing["id"])
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
    member = await factory.member()
    await factory.borrow_ok(client, member, await factory.book(), until=DUE, on=1)
    await run_worker(settings)

    assert len(telegram.calls) == 3
    [row] = await notifications(db)
    assert row.status == "SENT" and row.attempts == 3 and row.sent_at is not None


# -- one message, one delivery --------------------------------------------------------------


async def test_rate_limit_honours_retry_after(ctx, factory, telegram, db):
    telegram.return_value = httpx.Response(
        429,
        json={"ok": False, "description": "Too Many Requests", "parameters": {"retry_after": 7}},
    )
    message = await factory.notification()

    with pytest.raises(Retry) as retry:
        await deliver_notification(ctx, message.id)
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


async def test_gives_up_once_the_message_is_too_old(
    ctx, factory, settings, telegram, db, monkeypatch
):
    monkeypatch.setattr(settings, "NOTIFY_GIVE_UP_HOURS", 1)
    telegram.return_value = httpx.Response(502, text="Bad Gateway")
    message = await factory.notification()

    with pytest.raises(Retry):
        await deliver_notification(ctx, message.id)
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            text("UPDATE notifications SET created_at = now() - interval '61 minutes'")
        )
    assert await deliver_notification(ctx, message.id) == "failed"
    [row] = await notifications(db)
    assert row.status == "FAILED" and "502" in row.last_error and row.attempts == 2
    assert await deliver_notification(ctx, message.id) == "not pending"
    assert len(telegram.calls) == 2


async def test_a_job_run_twice_sends_once(ctx, factory, telegram):
    message = await factory.notification("once")
    assert await deliver_notification(ctx, message.id) == "sent"
    assert await deliver_notification(ctx, message.id) == "not pending"
    assert sent_texts(telegram) == ["once"]


async def test_a_message_is_one_post_to_the_bots_send_message(ctx, factory, telegram, settings):
    message = await factory.notification("Line one\nLine two: ünïcode")
    assert await deliver_notification(ctx, message.id) == "sent"
    request = telegram.calls.last.request
    assert request.method == "POST"
    assert request.url == f"{TELEGRAM_BASE}/bot{settings.TELEGRAM_BOT_TOKEN}/sendMessage"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "chat_id": settings.TELEGRAM_CHAT_ID,
        "text": "Line one\nLine two: ünïcode",
        "disable_web_page_preview": True,
    }


def test_telegram_is_reached_through_the_proxy_the_environment_names(monkeypatch):
    """As an httpx client would: HTTPS_PROXY (or ALL_PROXY), unless NO_PROXY names the host."""
    url = httpx.URL("https://api.telegram.org/bot1:token/sendMessage")
    for scheme in ("http", "https", "all", "no"):
        monkeypatch.delenv(f"{scheme}_proxy", raising=False)
        monkeypatch.delenv(f"{scheme.upper()}_PROXY", raising=False)
    assert environment_proxy(url) is None
    monkeypatch.setenv("ALL_PROXY", "http://all.internal:3128")
    assert environment_proxy(url) == "http://all.internal:3128"
    monkeypatch.setenv("HTTPS_PROXY", "http://egress.internal:3128")
    assert environment_proxy(url) == "http://egress.internal:3128"
    monkeypatch.setenv("NO_PROXY", "localhost,telegram.org")
    assert environment_proxy(url) is None
    assert environment_proxy(httpx.URL("https://api.telegram.org.example.com/")) is not None


async def test_a_message_held_by_another_sender_is_not_sent_twice(ctx, factory, telegram, db):
    """Two workers racing for one message: the lease lets only one send it."""
    message = await factory.notification("raced")
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            text("UPDATE notifications SET locked_until = now() + interval '1 minute'")
        )
    assert await deliver_notification(ctx, message.id) == "not pending"
    assert telegram.calls.call_count == 0


async def test_without_a_token_messages_are_logged(
    ctx, factory, settings, telegram, monkeypatch, caplog
):
    monkeypatch.setattr(settings, "TELEGRAM_BOT_TOKEN", "")
    message = await factory.notification("to the console")
    with caplog.at_level("INFO"):
        assert await deliver_notification(ctx, message.id) == "sent"
    assert "to the console" in caplog.text
    assert telegram.calls.call_count == 0


# -- the outbox -----------------------------------------------------------------------------


async def test_redis_down_while_borrowing_loses_nothing(
    app, client, factory, settings, telegram, db
):
    redis = EmbeddedRedis(data_folder("redis-outage-test")).start()
    outage_queue = connect_queue(redis.url)
    usual_queue, app.state.queue = app.state.queue, outage_queue
    member = await factory.member()
    book = await factory.book()
    try:
        redis.stop()
        response = await factory.borrow(client, member, book, until=DUE, on=1)
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


async def test_relay_skips_messages_already_sent_or_waiting(ctx, factory, queue):
    await factory.notification("sent", status="SENT")
    await factory.notification(
        "backing off", next_attempt_at=datetime.now(UTC) + timedelta(minutes=5)
    )
    await factory.notification("due")
    assert await relay_notifications(ctx) == 1
    assert await queue.zcard("arq:queue") == 1
