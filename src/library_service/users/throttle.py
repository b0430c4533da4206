"""Login throttling in Redis: a guesser gets `limit` tries per window, an owner is not
locked out.

Counters, over a fixed window of `window_seconds`:
- per client address: failed logins for any email;
- per email: failed logins from any address, and which addresses they came from.

A login is refused (429) when its address has used up its tries, or when the email has
used up its tries and this address is one they came from. So a known member whose email is
being guessed from elsewhere still gets in from their own address with the right password,
while each guessing address gets at most its share.

Every attempt reserves its try atomically (one Lua script) before bcrypt runs, so a burst
of concurrent guesses cannot exceed the limit; a successful login gives its try back. If
Redis is unreachable the throttle is skipped (logged): an outage must not lock everyone out.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from library_service.core.errors import RateLimitedError

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)

# KEYS: address failures, email failures, email failures by address (a hash).
# ARGV: limit, window seconds, address. Returns 0, or the seconds until a retry may succeed.
_RESERVE = """
local limit = tonumber(ARGV[1])
if tonumber(redis.call('GET', KEYS[1]) or '0') >= limit then
  return math.max(redis.call('TTL', KEYS[1]), 1)
end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= limit
    and tonumber(redis.call('HGET', KEYS[3], ARGV[3]) or '0') > 0 then
  return math.max(redis.call('TTL', KEYS[2]), 1)
end
for _, key in ipairs({KEYS[1], KEYS[2]}) do
  if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, ARGV[2]) end
end
if redis.call('HINCRBY', KEYS[3], ARGV[3], 1) == 1 and redis.call('TTL', KEYS[3]) < 0 then
  redis.call('EXPIRE', KEYS[3], ARGV[2])
end
return 0
"""

# Same KEYS; ARGV: address. Gives a reserved try back (never below zero).
_RELEASE = """
for _, key in ipairs({KEYS[1], KEYS[2]}) do
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
end
if tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0') > 0 then
  redis.call('HINCRBY', KEYS[3], ARGV[1], -1)
end
return 0
"""


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """A reserved try: `keys` is empty when the throttle is off or Redis was unreachable."""

    address: str
    keys: tuple[str, ...]


class LoginThrottle:
    def __init__(
        self,
        redis: Redis | None,
        *,
        limit: int,
        window_seconds: int,
        prefix: str = "login-failures",
    ) -> None:
        self.redis = redis
        self.limit = limit
        self.window = window_seconds
        # Another prefix, another count under the same bounds (password resets).
        self.prefix = prefix

    def _keys(self, address: str, email: str) -> tuple[str, ...]:
        account = hashlib.sha256(email.lower().encode()).hexdigest()[:32]
        return (
            f"{self.prefix}:ip:{address}",
            f"{self.prefix}:email:{account}",
            f"{self.prefix}:email-ips:{account}",
        )

    async def reserve(self, address: str, email: str) -> LoginAttempt:
        """Count this attempt as failed until `succeeded`; RateLimitedError if it may not
        even be tried."""
        if self.redis is None:
            return LoginAttempt(address, ())
        keys = self._keys(address, email)
        try:
            reserve = self.redis.register_script(_RESERVE)
            retry_after = int(await reserve(keys, [self.limit, self.window, address]))
        except Exception as exc:  # Redis down: do not lock everyone out
            logger.warning("login throttle unavailable: %r", exc)
            return LoginAttempt(address, ())
        if retry_after:
            raise RateLimitedError(retry_after=retry_after)
        return LoginAttempt(address, keys)

    async def succeeded(self, attempt: LoginAttempt) -> None:
        """The password was right: the attempt does not count."""
        if self.redis is None or not attempt.keys:
            return
        try:
            await self.redis.register_script(_RELEASE)(attempt.keys, [attempt.address])
        except Exception as exc:
            logger.warning("login throttle unavailable: %r", exc)
