"""Login throttling in Redis: a guesser gets a bounded number of tries per window, an owner
is not locked out.

Counters, over a fixed window of `window_seconds`:
- per client address: failed logins for any email (`per_address` of them);
- per email: failed logins from any address, and which addresses they came from
  (`per_email`).

A login is refused (429) when its address has used up its tries, or when the email has
used up its tries and this address is one they came from. So a known member whose email is
being guessed from elsewhere still gets in from their own address with the right password,
while each guessing address gets at most its share. The per-address limit is the higher
one: many people share an address (a library's catalogue terminals, an office's NAT).

Every attempt reserves its try atomically (one Lua script) before bcrypt runs, so a burst
of concurrent guesses cannot exceed the limit; a successful login gives its try back.

Each process keeps the same counts in memory (`LocalLoginCounts`). They decide only when
Redis cannot answer: then the limit holds per process instead of across processes, so an
outage neither locks everyone out nor lets guesses through unlimited. A Redis that takes
connections and never answers is waited for `REDIS_WAIT_SECONDS` at most: the client sets
up its connections one at a time, so without a bound of their own a burst of logins would
queue behind each other's timeouts (40 of them, over a minute).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from library_service.core.errors import RateLimitedError

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)

REDIS_WAIT_SECONDS = 1.0

# KEYS: address failures, email failures, email failures by address (a hash).
# ARGV: per-address limit, per-email limit, window seconds, address. Returns 0, or the
# seconds until a retry may succeed.
_RESERVE = """
if tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[1]) then
  return math.max(redis.call('TTL', KEYS[1]), 1)
end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[2])
    and tonumber(redis.call('HGET', KEYS[3], ARGV[4]) or '0') > 0 then
  return math.max(redis.call('TTL', KEYS[2]), 1)
end
for _, key in ipairs({KEYS[1], KEYS[2]}) do
  if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, ARGV[3]) end
end
if redis.call('HINCRBY', KEYS[3], ARGV[4], 1) == 1 and redis.call('TTL', KEYS[3]) < 0 then
  redis.call('EXPIRE', KEYS[3], ARGV[3])
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
    """A reserved try, to give back if the password was right: `keys` is empty when the
    throttle is off; `in_redis` and `in_memory` say where it was counted."""

    address: str
    keys: tuple[str, ...]
    in_redis: bool = False
    in_memory: bool = False


class LocalLoginCounts:
    """The login counters of `_RESERVE` and `_RELEASE`, in this process's memory (one per
    application). Nothing here awaits, so each call is atomic within the process."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, float]] = {}  # key → (count, end of its window)
        self._sweep_above = 1024

    def reserve(
        self, keys: tuple[str, ...], address: str, *, limits: tuple[int, int], window: int
    ) -> int:
        """0 once the try is counted, or the seconds until a retry may succeed."""
        now = time.monotonic()
        address_key, email_key, sources_key = keys
        source_key = f"{sources_key}:{address}"
        for key, limit, source in (
            (address_key, limits[0], None),
            (email_key, limits[1], source_key),
        ):
            count, ends = self._live(key, now)
            if count >= limit and (source is None or self._live(source, now)[0] > 0):
                return max(math.ceil(ends - now), 1)
        for key in (address_key, email_key, source_key):
            count, ends = self._live(key, now)
            self._counts[key] = (count + 1, ends if count else now + window)
        if len(self._counts) > self._sweep_above:
            self._sweep(now)
        return 0

    def release(self, keys: tuple[str, ...], address: str) -> None:
        now = time.monotonic()
        address_key, email_key, sources_key = keys
        for key in (address_key, email_key, f"{sources_key}:{address}"):
            count, ends = self._live(key, now)
            if count > 0:
                self._counts[key] = (count - 1, ends)

    def clear(self) -> None:
        self._counts.clear()

    def _live(self, key: str, now: float) -> tuple[int, float]:
        count, ends = self._counts.get(key, (0, 0.0))
        return (count, ends) if ends > now else (0, 0.0)

    def _sweep(self, now: float) -> None:
        """Forget ended windows; sweep again once the live ones have doubled (amortized)."""
        self._counts = {key: entry for key, entry in self._counts.items() if entry[1] > now}
        self._sweep_above = max(1024, 2 * len(self._counts))


class LoginThrottle:
    @classmethod
    def off(cls) -> LoginThrottle:
        """No limit (the command-line tools, which create accounts outside any login)."""
        return cls(None, None, per_address=0, per_email=0, window_seconds=0)

    def __init__(
        self,
        redis: Redis | None,
        local: LocalLoginCounts | None,
        *,
        per_address: int,
        per_email: int,
        window_seconds: int,
        prefix: str = "login-failures",
    ) -> None:
        self.redis = redis
        self.local = local
        self.limits = (per_address, per_email)
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
        if self.redis is None and self.local is None:
            return LoginAttempt(address, ())
        keys = self._keys(address, email)
        # Counted here first, synchronously: a burst is counted in order even while its
        # calls to Redis are still on their way.
        local_wait = (
            self.local.reserve(keys, address, limits=self.limits, window=self.window)
            if self.local is not None
            else 0
        )
        in_memory = self.local is not None and not local_wait
        retry_after = None
        if self.redis is not None:
            try:
                reserve = self.redis.register_script(_RESERVE)
                async with asyncio.timeout(REDIS_WAIT_SECONDS):
                    retry_after = int(await reserve(keys, [*self.limits, self.window, address]))
            except Exception as exc:  # Redis cannot answer: this process's count decides
                logger.warning("login throttle: Redis unavailable, counting per process: %r", exc)
        if retry_after is None:
            if local_wait:
                raise RateLimitedError(retry_after=local_wait)
            return LoginAttempt(address, keys, in_memory=in_memory)
        if retry_after:
            if in_memory and self.local is not None:
                self.local.release(keys, address)  # Redis refused it: it does not count
            raise RateLimitedError(retry_after=retry_after)
        return LoginAttempt(address, keys, in_redis=True, in_memory=in_memory)

    async def succeeded(self, attempt: LoginAttempt) -> None:
        """The password was right: the attempt does not count."""
        if attempt.in_memory and self.local is not None:
            self.local.release(attempt.keys, attempt.address)
        if not attempt.in_redis or self.redis is None:
            return
        try:
            async with asyncio.timeout(REDIS_WAIT_SECONDS):
                await self.redis.register_script(_RELEASE)(attempt.keys, [attempt.address])
        except Exception as exc:
            logger.warning("login throttle unavailable: %r", exc)
