"""The keys in `idempotency_keys`: claimed with a lease, marked committed with the
operation's effects, then holding the answer until they expire."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Delete, and_, delete, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Scope

from library_service.core import clock
from library_service.core.db import Database
from library_service.models import IdempotencyKey
from library_service.web.idempotency.errors import (
    IdempotencyAnswerLostError,
    IdempotencyKeyInUseError,
    IdempotencyKeyReusedError,
    IdempotentReplay,
)

logger = logging.getLogger(__name__)

# How long the request that claimed a key may take before a retry may take it over. Longer
# than any request can run (Stripe's and the database's timeouts are far shorter).
LEASE = timedelta(seconds=60)
PURGE_EXPIRED = "idempotency.purge_expired"
PURGE_BATCH = 1_000  # keys deleted per statement (its own transaction)
PURGE_BATCHES = 20  # statements per hourly run; what is left waits for the next run

# Answers a retry may not get again: credentials, timing and outages.
_UNSTORED_STATUSES = frozenset({401, 408, 409, 429})
_UNSTORED_HEADERS = frozenset({"content-length"})
_FIRST_POLL_SECONDS = 0.02
_MAX_POLL_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class Claim:
    """This request's hold on a key: it runs the operation and stores the answer."""

    db: Database
    user_id: int
    key: str
    owner: str

    def _this_key(self) -> Any:
        return and_(
            IdempotencyKey.user_id == self.user_id,
            IdempotencyKey.key == self.key,
            IdempotencyKey.owner == self.owner,
        )

    async def mark_committed(self, session: AsyncSession) -> None:
        """In the operation's transaction: from its commit on, the key never runs again."""
        marked = await session.execute(
            update(IdempotencyKey).where(self._this_key()).values(committed_at=clock.now())
        )
        if marked.rowcount == 0:  # type: ignore[attr-defined]
            # Our lease lapsed and a retry took the key over: it runs the operation, not us.
            raise IdempotencyKeyInUseError

    async def finish(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """Store an answer a retry should get again; otherwise release the key."""
        if status >= 500 or status in _UNSTORED_STATUSES:
            await self.release()
            return
        kept = [
            [name.decode("latin-1"), value.decode("latin-1")]
            for name, value in headers
            if name.decode("latin-1") not in _UNSTORED_HEADERS
        ]
        async with self.db.autocommit_engine.begin() as connection:
            await connection.execute(
                update(IdempotencyKey)
                .where(self._this_key())
                .values(
                    owner=None,
                    locked_until=None,
                    status_code=status,
                    response_headers=kept,
                    response_body=body,
                )
            )

    async def release(self) -> None:
        """Forget the key, so a retry runs the operation, unless its effects committed."""
        async with self.db.autocommit_engine.begin() as connection:
            await connection.execute(
                delete(IdempotencyKey).where(
                    self._this_key(), IdempotencyKey.committed_at.is_(None)
                )
            )


def request_hash(scope: Scope, body: bytes) -> bytes:
    """What makes two requests "the same": method, path (and query) and body bytes."""
    digest = hashlib.sha256()
    digest.update(f"{scope['method']} {scope['path']}?".encode())
    digest.update(scope.get("query_string", b""))
    digest.update(b"\n")
    digest.update(body)
    return digest.digest()


def _held_by_another(user_id: int, key: str) -> Any:
    return select(
        IdempotencyKey.request_hash,
        IdempotencyKey.locked_until,
        IdempotencyKey.committed_at,
        IdempotencyKey.status_code,
        IdempotencyKey.response_headers,
        IdempotencyKey.response_body,
    ).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)


def _answer_from(row: Any, fingerprint: bytes, now: datetime) -> None:
    """Raise what answers a request whose key another request holds, if anything does yet."""
    if row.request_hash != fingerprint:
        raise IdempotencyKeyReusedError
    if row.status_code is not None:
        raise IdempotentReplay(row.status_code, row.response_headers, row.response_body)
    lapsed = row.locked_until is None or row.locked_until <= now
    if row.committed_at is not None and lapsed:
        raise IdempotencyAnswerLostError


async def claim(
    db: Database,
    *,
    user_id: int,
    key: str,
    fingerprint: bytes,
    ttl: timedelta,
    wait_seconds: float,
) -> Claim:
    """Claim `key` for a request, or raise what answers it instead (see the module)."""
    owner = secrets.token_hex(16)
    deadline = time.monotonic() + wait_seconds
    pause = _FIRST_POLL_SECONDS
    while True:
        now = clock.now()
        async with db.autocommit_engine.begin() as connection:
            statement = _claim_statement(user_id, key, fingerprint, owner, now, ttl)
            if await connection.scalar(statement):
                return Claim(db, user_id, key, owner)
            row = (await connection.execute(_held_by_another(user_id, key))).one_or_none()
        if row is not None:
            _answer_from(row, fingerprint, now)
            # Still running (or released, or expired, since): wait, then look again.
            if time.monotonic() + pause > deadline:
                raise IdempotencyKeyInUseError
        await asyncio.sleep(pause)
        pause = min(pause * 2, _MAX_POLL_SECONDS)


def _claim_statement(
    user_id: int, key: str, fingerprint: bytes, owner: str, now: Any, ttl: timedelta
) -> Any:
    """Insert the key for `owner`; or take over an expired key, or a claim whose lease lapsed
    before it committed anything (the same request only). Returns the owner if claimed."""
    new = insert(IdempotencyKey).values(
        user_id=user_id,
        key=key,
        request_hash=fingerprint,
        owner=owner,
        locked_until=now + LEASE,
        expires_at=now + ttl,
    )
    return new.on_conflict_do_update(
        index_elements=[IdempotencyKey.user_id, IdempotencyKey.key],
        set_={
            "request_hash": new.excluded.request_hash,
            "owner": new.excluded.owner,
            "locked_until": new.excluded.locked_until,
            "committed_at": None,
            "status_code": None,
            "response_headers": None,
            "response_body": None,
            "created_at": now,
            "expires_at": new.excluded.expires_at,
        },
        where=or_(
            IdempotencyKey.expires_at <= now,
            and_(
                IdempotencyKey.request_hash == new.excluded.request_hash,
                IdempotencyKey.status_code.is_(None),
                IdempotencyKey.committed_at.is_(None),
                IdempotencyKey.locked_until <= now,
            ),
        ),
    ).returning(IdempotencyKey.owner)


def expired_keys_batch(now: datetime, *, limit: int = PURGE_BATCH) -> Delete:
    """Delete up to `limit` keys expired by `now`, oldest first (through the expiry index);
    a key claimed again meanwhile has a new expiry and stays."""
    oldest = (
        select(IdempotencyKey.user_id, IdempotencyKey.key)
        .where(IdempotencyKey.expires_at <= now)
        .order_by(IdempotencyKey.expires_at)
        .limit(limit)
    )
    return delete(IdempotencyKey).where(
        tuple_(IdempotencyKey.user_id, IdempotencyKey.key).in_(oldest),
        IdempotencyKey.expires_at <= now,
    )


async def purge_expired_keys(ctx: dict[str, Any]) -> int:
    """Worker cron: delete the keys past their expiry (they answer nothing any more), in
    batches of PURGE_BATCH, each its own short transaction, at most PURGE_BATCHES a run:
    a backlog larger than that waits for the next hourly run instead of one long delete."""
    db: Database = ctx["db"]
    now = clock.now()
    count = 0
    for _ in range(PURGE_BATCHES):
        async with db.autocommit_engine.begin() as connection:
            batch = expired_keys_batch(now, limit=PURGE_BATCH)
            purged: int = (await connection.execute(batch)).rowcount
        count += purged
        if purged < PURGE_BATCH:
            break
    if count:
        logger.info("purged %d expired idempotency keys", count)
    return count
