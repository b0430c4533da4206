"""Settings from the environment or `.env` (see `.env.sample` for every variable)."""

from __future__ import annotations

import os
from datetime import time
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from library_service.core.money import MAX_CHARGE, MIN_CHARGE

DEFAULT_SECRET_KEY = "dev-insecure-secret-key-change-me"  # noqa: S105 - refused in production
SANDBOX_STRIPE_KEY = "sk_test_sandbox"
MIN_SECRET_KEY_LENGTH = 32


class Settings(BaseSettings):
    # Empty values count as unset, so a copied .env.sample changes nothing.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    ENVIRONMENT: Literal["development", "test", "production"] = "development"
    SECRET_KEY: str = DEFAULT_SECRET_KEY

    # Empty means: start the embedded stand-in (local run only).
    DATABASE_URL: str = ""
    REDIS_URL: str = ""
    # Sized to the requests one API process has in flight: overflow connections are closed
    # when handed back, so a busy process with overflow keeps opening new ones.
    DB_POOL_SIZE: int = Field(default=32, ge=1)
    DB_MAX_OVERFLOW: int = Field(default=0, ge=0)
    DB_POOL_TIMEOUT_SECONDS: float = Field(default=10, gt=0)
    # `pgbouncer`: DATABASE_URL points at PgBouncer in transaction mode (core/db.py).
    DATABASE_POOLER: Literal["none", "pgbouncer"] = "none"

    ACCESS_MINUTES: int = Field(default=60, ge=1)
    REFRESH_DAYS: int = Field(default=1, ge=1)
    BCRYPT_ROUNDS: int = Field(default=12, ge=4, le=31)
    # Failed logins per window: for one email (from the addresses that failed for it), and
    # from one address for any emails (higher: many people can share an address).
    LOGIN_RATE_LIMIT: int = Field(default=10, ge=1)
    LOGIN_RATE_LIMIT_PER_ADDRESS: int = Field(default=50, ge=1)
    LOGIN_RATE_WINDOW_SECONDS: int = Field(default=60, ge=1)

    # The catalogue's total (`count` of GET /api/books/) is reused for this long per process.
    BOOK_COUNT_CACHE_SECONDS: float = Field(default=5, ge=0)
    # A list's filters that matched more than 1,000 rows (its `count` is then an estimate)
    # answer the same estimate for this long per process, without counting again.
    ESTIMATED_COUNT_CACHE_SECONDS: float = Field(default=5, ge=0)

    LIBRARY_TIMEZONE: str = "UTC"
    MAX_BORROW_DAYS: int = Field(default=60, ge=1, le=365)
    MAX_ACTIVE_BORROWINGS: int = Field(default=3, ge=1)
    MAX_EXTENSIONS: int = Field(default=2, ge=0)
    MAX_ACTIVE_HOLDS: int = Field(default=5, ge=1)
    HOLD_PICKUP_DAYS: int = Field(default=3, ge=1)
    # The due date the desk offers when lending (at most MAX_BORROW_DAYS ahead).
    DEFAULT_LOAN_DAYS: int = Field(default=14, ge=1, le=365)
    FINE_MULTIPLIER: Decimal = Field(default=Decimal("2"), gt=0)
    FINE_GRACE_DAYS: int = Field(default=0, ge=0)
    # The most one late return costs; unset: only the most one card payment can be.
    FINE_MAX_AMOUNT: Decimal | None = Field(default=None, ge=MIN_CHARGE, le=MAX_CHARGE)
    OVERDUE_REPORT_TIME: time = time(9, 0)

    STRIPE_SECRET_KEY: str = ""
    STRIPE_WEBHOOK_SECRET: str = ""
    STRIPE_API_BASE: str = "https://api.stripe.com"
    STRIPE_TIMEOUT_SECONDS: float = Field(default=10, gt=0)
    # Public origin used in Stripe redirect URLs; empty means "the request's own base URL".
    PUBLIC_BASE_URL: str = ""
    # A browser coming back from Stripe goes on to {FRONTEND_URL}/payments/{id}?status=…;
    # empty: the API shows a small page of its own.
    FRONTEND_URL: str = ""
    # The local run's sandbox Stripe (when STRIPE_SECRET_KEY is unset) listens here; a fixed
    # port keeps the payment links of earlier runs working. 0: any free port.
    SANDBOX_STRIPE_PORT: int = Field(default=8010, ge=0, le=65535)

    # Member notices by e-mail. Without SMTP_HOST the local run starts its own mail catcher
    # (SANDBOX_SMTP_PORT, its web page on SANDBOX_MAILBOX_PORT); elsewhere e-mails are logged.
    SMTP_HOST: str = ""
    SMTP_PORT: int = Field(default=587, ge=1, le=65535)
    SMTP_USERNAME: str = ""
    SMTP_PASSWORD: str = ""
    SMTP_STARTTLS: bool = True
    SMTP_TIMEOUT_SECONDS: float = Field(default=10, gt=0)
    MAIL_FROM: str = "library@library.example.com"
    LIBRARY_NAME: str = "The Library"
    SANDBOX_SMTP_PORT: int = Field(default=1025, ge=0, le=65535)
    SANDBOX_MAILBOX_PORT: int = Field(default=8025, ge=0, le=65535)
    # Reminders: a loan due in DUE_REMINDER_DAYS and on its due day; an overdue one on its
    # first day late and every OVERDUE_REMINDER_DAYS after; swept daily at REMINDER_TIME.
    DUE_REMINDER_DAYS: int = Field(default=2, ge=1)
    OVERDUE_REMINDER_DAYS: int = Field(default=7, ge=1)
    REMINDER_TIME: time = time(8, 0)
    # How long a password link works: one asked for (reset), one sent at desk enrolment.
    PASSWORD_RESET_MINUTES: int = Field(default=60, ge=1)
    WELCOME_LINK_DAYS: int = Field(default=7, ge=1)

    TELEGRAM_BOT_TOKEN: str = ""
    TELEGRAM_CHAT_ID: str = ""
    TELEGRAM_API_BASE: str = "https://api.telegram.org"
    TELEGRAM_TIMEOUT_SECONDS: float = Field(default=5, gt=0)
    NOTIFY_BACKOFF_SECONDS: float = Field(default=5, ge=0)
    # Once a message is sent, how long to wait for Telegram's answer (TELEGRAM_TIMEOUT_SECONDS
    # bounds connecting): a send that times out may still arrive, and is then sent again.
    TELEGRAM_SEND_TIMEOUT_SECONDS: float = Field(default=30, gt=0)
    # A message still undelivered this long after it was recorded is marked FAILED at its
    # next failed attempt; until then every failure is retried.
    NOTIFY_GIVE_UP_HOURS: float = Field(default=24, gt=0)

    # The worker records a heartbeat this often (stale after three missed beats), and waits
    # at most this long between attempts to reach Redis or PostgreSQL again.
    WORKER_HEARTBEAT_SECONDS: float = Field(default=10, gt=0)
    WORKER_RETRY_MAX_SECONDS: float = Field(default=5, gt=0)
    # The longest one job may run (a send to Telegram, a Stripe poll); a job of a worker that
    # died is run again by another worker this long plus WORKER_JOB_GRACE_SECONDS after it
    # started (arq's rule, with arq's 10 s by default). Running it again early costs nothing
    # but a retry: a message is claimed under a lease of its own, which it waits out.
    WORKER_JOB_TIMEOUT_SECONDS: float = Field(default=120, gt=0)
    WORKER_JOB_GRACE_SECONDS: float = Field(default=10, gt=0)
    # Tests only (refused in production): every cron job runs every this many seconds
    # instead of on its schedule, so that a test sees many cron slots in a few seconds.
    WORKER_CRON_EVERY_SECONDS: int | None = Field(default=None, ge=1, le=30)

    # On SIGTERM an API process answers /ready with 503 at once (the load balancer's cue to
    # send it nothing new) and keeps serving this long before it stops taking connections;
    # then it finishes the requests in flight (up to 20 s) and exits. Default: 5 s in
    # production, none elsewhere (a local run stops at once).
    SHUTDOWN_DRAIN_SECONDS: float | None = Field(default=None, ge=0, le=120)

    # Proxies whose X-Forwarded-For/-Proto are believed (comma-separated, "*" for any);
    # empty: none, so no client can claim another address.
    FORWARDED_ALLOW_IPS: str = ""
    # Comma-separated list of origins allowed to call the API from a browser.
    CORS_ORIGINS: Annotated[list[str], NoDecode] = []
    MAX_BODY_BYTES: int = Field(default=64 * 1024, ge=1024)
    LOG_JSON: bool | None = None  # default: JSON logs in production only

    # A retried write with the same Idempotency-Key answers its first answer for this long.
    IDEMPOTENCY_KEY_HOURS: int = Field(default=24, ge=1)
    # How long a retry waits for the first request with its key to finish (then 409).
    IDEMPOTENCY_WAIT_SECONDS: float = Field(default=10, ge=0)

    # GET /metrics for Prometheus. Default: on, except in production, where it needs a token.
    METRICS_ENABLED: bool | None = None
    # When set, /metrics asks for `Authorization: Bearer <METRICS_TOKEN>`.
    METRICS_TOKEN: str = ""

    @field_validator("CORS_ORIGINS", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("FRONTEND_URL")
    @classmethod
    def _http_origin(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("FRONTEND_URL must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("MAIL_FROM")
    @classmethod
    def _plain_address(cls, value: str) -> str:
        local, at, domain = value.partition("@")
        if not (local and at and "." in domain) or any(c in value for c in " <>,\r\n"):
            raise ValueError("MAIL_FROM must be a plain address such as library@example.com")
        return value

    @field_validator("LIBRARY_TIMEZONE")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _production_safety(self) -> Settings:
        if self.ENVIRONMENT != "production":
            return self
        if self.SECRET_KEY == DEFAULT_SECRET_KEY or len(self.SECRET_KEY) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(
                f"SECRET_KEY must be a random value of at least {MIN_SECRET_KEY_LENGTH} "
                "characters in production; make one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        missing = [
            name
            for name in (
                "DATABASE_URL",
                "REDIS_URL",
                "STRIPE_SECRET_KEY",
                "STRIPE_WEBHOOK_SECRET",
                # Stripe's redirects for sessions the worker creates (fines recorded offline).
                "PUBLIC_BASE_URL",
            )
            if not getattr(self, name)
        ]
        if missing:
            raise ValueError(f"production needs {', '.join(missing)}")
        if self.WORKER_CRON_EVERY_SECONDS:
            raise ValueError("WORKER_CRON_EVERY_SECONDS is for tests, not production")
        if self.METRICS_ENABLED and not self.METRICS_TOKEN:
            raise ValueError("METRICS_ENABLED in production needs a METRICS_TOKEN")
        return self

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.LIBRARY_TIMEZONE)

    @property
    def is_production(self) -> bool:
        return self.ENVIRONMENT == "production"

    @property
    def stripe_api_key(self) -> str:
        return self.STRIPE_SECRET_KEY or SANDBOX_STRIPE_KEY

    @property
    def metrics_enabled(self) -> bool:
        return not self.is_production if self.METRICS_ENABLED is None else self.METRICS_ENABLED

    @property
    def shutdown_drain_seconds(self) -> float:
        if self.SHUTDOWN_DRAIN_SECONDS is not None:
            return self.SHUTDOWN_DRAIN_SECONDS
        return 5.0 if self.is_production else 0.0

    @property
    def json_logs(self) -> bool:
        return self.is_production if self.LOG_JSON is None else self.LOG_JSON


@lru_cache
def get_settings() -> Settings:
    return Settings()


def reload_settings(**environment: str) -> Settings:
    """Set environment variables (child processes inherit them) and re-read the settings."""
    os.environ.update(environment)
    get_settings.cache_clear()
    return get_settings()
