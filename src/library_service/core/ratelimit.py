"""Failed-login throttling in Redis: fixed windows per client IP and per email.

Only failures count, so a member who types the password right is never slowed down, while a
guesser gets `LOGIN_RATE_LIMIT` tries per window per address and per account. If Redis is
unreachable the check is skipped (logged): an outage must not lock everyone out.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

from library_service.core.errors import RateLimitedError

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)


class LoginThrottle:
    def __init__(self, redis: Redis | None, *, limit: int, window_seconds: int) -> None:
        self.redis = redis
        self.limit = limit
        self.window = window_seconds

    @staticmethod
    def keys(client_ip: str, email: str) -> list[str]:
        account = hashlib.sha256(email.lower().encode()).hexdigest()[:32]
        return [f"login-failures:ip:{client_ip}", f"login-failures:email:{account}"]

    async def check(self, keys: list[str]) -> None:
        """Raise RateLimitedError if any key used up its failures in this window."""
        if self.redis is None:
            return
        try:
            counts = await self.redis.mget(keys)
            blocked = [
                key
                for key, count in zip(keys, counts, strict=True)
                if int(count or 0) >= self.limit
            ]
            if not blocked:
                return
            retry_after = max([int(await self.redis.ttl(key)) for key in blocked])
        except Exception as exc:  # Redis down: do not lock everyone out
            logger.warning("login throttle unavailable: %r", exc)
            return
        raise RateLimitedError(retry_after=max(retry_after, 1))

    async def record_failure(self, keys: list[str]) -> None:
        if self.redis is None:
            return
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for key in keys:
                    pipe.set(key, 0, ex=self.window, nx=True)  # the window starts now
                    pipe.incr(key)
                await pipe.execute()
        except Exception as exc:
            logger.warning("login throttle unavailable: %r", exc)
