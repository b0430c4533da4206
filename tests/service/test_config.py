"""Settings safety and the operational plumbing: production refusals, logs, CORS."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from pydantic import ValidationError

from library_service.core.config import DEFAULT_SECRET_KEY, Settings
from library_service.core.logging import JsonFormatter
from library_service.main import create_app
from library_service.web.middleware import request_id_var
from tests.factories import PRODUCTION


def make(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_production_with_everything_set_starts():
    assert make(**PRODUCTION).is_production


@pytest.mark.parametrize("secret", [DEFAULT_SECRET_KEY, "short-secret", "x" * 31])
def test_production_refuses_a_default_or_short_secret(secret):
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        make(**{**PRODUCTION, "SECRET_KEY": secret})


@pytest.mark.parametrize(
    "missing",
    ["DATABASE_URL", "REDIS_URL", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "PUBLIC_BASE_URL"],
)
def test_production_refuses_to_run_on_stand_ins(missing):
    with pytest.raises(ValidationError, match=missing):
        make(**{**PRODUCTION, missing: ""})


def test_development_accepts_the_defaults():
    settings = make()
    assert settings.SECRET_KEY == DEFAULT_SECRET_KEY
    assert settings.stripe_api_key.startswith("sk_test_")


def test_empty_environment_values_count_as_unset(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "")
    monkeypatch.setenv("MAX_ACTIVE_BORROWINGS", "")
    settings = make()
    assert settings.SECRET_KEY == DEFAULT_SECRET_KEY
    assert settings.MAX_ACTIVE_BORROWINGS == 3


def test_cors_origins_are_comma_separated(monkeypatch):
    monkeypatch.setenv("CORS_ORIGINS", "http://localhost:3000, https://app.example.com")
    assert make().CORS_ORIGINS == ["http://localhost:3000", "https://app.example.com"]


def test_unknown_time_zone_is_refused():
    with pytest.raises(ValidationError, match="time zone"):
        make(LIBRARY_TIMEZONE="Mars/Olympus_Mons")


def test_json_log_lines_carry_the_request_id():
    token = request_id_var.set("abc123")
    try:
        record = logging.LogRecord(
            "library", logging.WARNING, __file__, 1, "hello %s", ("x",), None
        )
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["message"] == "hello x"
    assert line["level"] == "WARNING"
    assert line["request_id"] == "abc123"


async def test_cors_allows_configured_origins_only(settings):
    app = create_app(
        settings.model_copy(update={"CORS_ORIGINS": ["https://app.example.com"]}),
        configure_logs=False,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        allowed = await client.options(
            "/api/books/",
            headers={
                "Origin": "https://app.example.com",
                "Access-Control-Request-Method": "GET",
            },
        )
        other = await client.options(
            "/api/books/",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-origin" not in other.headers


async def test_http_stack_finds_sniffio():
    """httpcore (under the Stripe and Telegram clients) imports sniffio on every request;
    without it that is a failed import each time, which Python never caches."""
    import sys

    from httpcore._synchronization import current_async_library

    assert current_async_library() == "asyncio"
    assert "sniffio" in sys.modules  # found once, then a dictionary lookup
