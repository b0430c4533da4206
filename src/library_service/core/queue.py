"""The arq job queue (Redis)."""

from __future__ import annotations

from arq.connections import ArqRedis, RedisSettings


def redis_settings(url: str) -> RedisSettings:
    settings = RedisSettings.from_dsn(url)
    # Fail fast: a request must not wait on a missing Redis (the outbox sweep catches up).
    settings.conn_timeout = 1
    settings.conn_retries = 0
    return settings


def connect_queue(url: str) -> ArqRedis:
    """A client that connects lazily, so the API starts (and serves) while Redis is down."""
    client: ArqRedis = ArqRedis.from_url(
        url, socket_connect_timeout=1, socket_timeout=2, health_check_interval=30
    )
    return client
