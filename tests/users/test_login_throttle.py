"""Failed logins are throttled per client IP and per email (Redis), successes never."""

from __future__ import annotations

import pytest

from tests.factories import PASSWORD, login


@pytest.fixture
async def throttled(app, settings, monkeypatch):
    monkeypatch.setattr(settings, "LOGIN_RATE_LIMIT", 3)
    monkeypatch.setattr(settings, "LOGIN_RATE_LIMIT_PER_ADDRESS", 3)
    monkeypatch.setattr(settings, "LOGIN_RATE_WINDOW_SECONDS", 60)
    await app.state.queue.flushdb()
    yield
    await app.state.queue.flushdb()


async def test_failed_logins_are_throttled_per_email(client, factory, throttled):
    user = await factory.user(email="target@example.com")
    for _ in range(3):
        assert (await login(client, user.email, "wrong-password")).status_code == 401
    blocked = await login(client, user.email, PASSWORD)  # even the right password
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "rate_limited"
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60


async def test_successful_logins_are_never_throttled(client, factory, throttled):
    user = await factory.user()
    for _ in range(6):
        assert (await login(client, user.email, PASSWORD)).status_code == 200


async def test_throttle_counts_per_client_address(client, factory, throttled):
    # Every attempt here comes from the test client's one address, for different emails.
    for number in range(3):
        response = await login(client, f"nobody{number}@example.com", "wrong-password")
        assert response.status_code == 401
    other = await factory.user()
    assert (await login(client, other.email, PASSWORD)).status_code == 429


async def test_redis_outage_does_not_lock_everyone_out(client, factory, app, throttled):
    from library_service.core.queue import connect_queue

    user = await factory.user()
    usual, app.state.queue = app.state.queue, connect_queue("redis://127.0.0.1:1/0")
    try:
        assert (await login(client, user.email, "wrong-password")).status_code == 401
        assert (await login(client, user.email, PASSWORD)).status_code == 200
    finally:
        await app.state.queue.aclose()
        app.state.queue = usual
