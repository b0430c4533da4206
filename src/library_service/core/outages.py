"""Outages of PostgreSQL and Redis, as the worker meets them: which errors mean a server is
unreachable (not a bug), how long to wait before trying again, and logging each outage
once when it starts and once when it ends instead of at every failed attempt."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import redis.exceptions
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

logger = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 0.5

# SQLSTATE classes of a lost server: 08 connection exception; 57P01..03 shut down by an
# administrator, crashed, starting up ("cannot connect now").
_LOST_SERVER_STATES = ("08", "57P")

# ConnectionError covers BusyLoadingError (a restarted Redis loading its data); a replica
# promoted during a failover answers writes with READONLY until clients reconnect.
REDIS_UNAVAILABLE: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    OSError,
)


def is_database_unavailable(error: BaseException) -> bool:
    """True when PostgreSQL could not be reached or dropped the connection."""
    if isinstance(error, OSError | PoolTimeoutError):  # refused, no socket, connect timeout
        return True
    if not isinstance(error, DBAPIError):
        return False
    state = str(getattr(error.orig, "sqlstate", None) or "")
    return error.connection_invalidated or state.startswith(_LOST_SERVER_STATES)


def backoff(maximum: float) -> Iterator[float]:
    """Delays between retries: 0.5 s, doubling, capped at `maximum`."""
    delay = min(FIRST_RETRY_SECONDS, maximum)
    while True:
        yield delay
        delay = min(delay * 2, maximum)


def retry_delay(attempt: int, maximum: float) -> float:
    """The delay before retry number `attempt` (1-based), as `backoff` would give it."""
    return float(min(FIRST_RETRY_SECONDS * 2 ** min(attempt - 1, 32), maximum))


class Outage:
    """One dependency's state as its callers see it, logged only when it changes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.since: float | None = None

    def down(self, error: BaseException) -> None:
        if self.since is None:
            self.since = time.monotonic()
            logger.warning(
                "%s unavailable (%s: %s); the worker waits and retries with back-off",
                self.name,
                type(error).__name__,
                error,
            )

    def up(self) -> None:
        if self.since is not None:
            logger.info("%s is back after %.1f s; the worker resumes", self.name, self._elapsed())
            self.since = None

    def _elapsed(self) -> float:
        return time.monotonic() - (self.since or time.monotonic())
