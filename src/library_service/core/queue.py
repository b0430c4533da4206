"""The arq job queue (Redis), and the workers' heartbeats kept next to it."""

from __future__ import annotations

import os
import socket

from arq.connections import ArqRedis, RedisSettings

# One sorted set for every worker: member "<host>:<pid>", score the Redis server's clock
# at its last beat (one clock for all hosts, so no skew between them).
HEARTBEATS_KEY = "library:worker-heartbeats"
FORGET_WORKERS_AFTER_SECONDS = 24 * 3600
MISSED_BEATS_BEFORE_STALE = 3


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


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _seconds(seconds: int, microseconds: int) -> float:
    """Redis's TIME as one number."""
    return seconds + microseconds / 1_000_000


async def _redis_time(queue: ArqRedis) -> float:
    seconds, microseconds = await queue.time()
    return _seconds(seconds, microseconds)


async def record_heartbeat(queue: ArqRedis, name: str) -> None:
    now = await _redis_time(queue)
    async with queue.pipeline(transaction=False) as pipe:
        pipe.zadd(HEARTBEATS_KEY, {name: now})
        pipe.zremrangebyscore(HEARTBEATS_KEY, "-inf", now - FORGET_WORKERS_AFTER_SECONDS)
        await pipe.execute()


async def forget_heartbeat(queue: ArqRedis, name: str) -> None:
    """A worker that stops on purpose says so, instead of leaving a heartbeat to go stale."""
    await queue.zrem(HEARTBEATS_KEY, name)


async def heartbeat_age(queue: ArqRedis, *, host: str | None = None) -> float | None:
    """Seconds since the latest heartbeat of any worker (or of `host`'s); None if none."""
    async with queue.pipeline(transaction=False) as pipe:
        pipe.time()
        pipe.zrange(HEARTBEATS_KEY, 0, -1, withscores=True)
        (seconds, microseconds), beats = await pipe.execute()
    prefix = f"{host}:".encode() if host is not None else b""
    latest = [float(at) for name, at in beats if name.startswith(prefix)]
    if not latest:
        return None
    return max(0.0, _seconds(seconds, microseconds) - max(latest))


async def worker_state(
    queue: ArqRedis | None, beat_seconds: float, *, host: str | None = None
) -> str:
    """`ok` while a worker beats, else why not (for /ready and `library-service worker --check`)."""
    if queue is None:
        return "unavailable: no Redis configured"
    age = await heartbeat_age(queue, host=host)
    if age is None:
        return "unavailable: no worker heartbeat"
    if age > beat_seconds * MISSED_BEATS_BEFORE_STALE:
        return f"unavailable: last worker heartbeat {age:.0f} s ago"
    return "ok"
