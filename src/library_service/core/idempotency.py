"""Retry-safe writes: the `Idempotency-Key` header.

A front end that lost an answer sends the write again with the same key, and gets the first
answer again (status, body, headers, and `Idempotent-Replayed: true`) while the operation
runs once. A key belongs to the member who sent it (the authenticated user, whichever of
their tokens carries it), for `IDEMPOTENCY_KEY_HOURS`.

1. `idempotency_key`, a dependency of the write routes, runs after authentication: it claims
   the key in `idempotency_keys` for this request, with a lease, or answers from it: the
   stored answer, 422 `idempotency_key_reused` if the key came with another request, or,
   while the request that claimed it still runs, waits for its answer and replays it (409
   `idempotency_key_in_use` after `IDEMPOTENCY_WAIT_SECONDS`).
2. Every write phase of the request marks the key committed in its own transaction
   (`UnitOfWork.before_commit`): if the effects commit, so does the mark, and a key marked
   so never runs its operation again. A request whose lease has lapsed and whose key was
   taken over by a retry cannot commit (the mark finds another owner).
3. `IdempotencyMiddleware` stores the answer, then sends it. Stored: 2xx, and 4xx refusals a
   retry would get again. Not stored: 5xx (a 503 outage included), 401, 408, 409 and 429;
   the key is released instead, and a retry runs the operation again.

If the process dies between the commit and storing the answer, the key stays marked
committed without an answer: once its lease lapses, a retry answers 409
`idempotency_answer_lost` rather than running the operation twice. If it dies before the
commit, nothing changed, and a retry after the lease runs the operation.

A request without the header pays nothing: no query, no buffering of its answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request, Response
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from library_service.core import clock
from library_service.core.db import Database
from library_service.core.dependencies import SettingsDep, UnitOfWorkDep
from library_service.core.errors import AppError, ConflictError
from library_service.models import IdempotencyKey

# The one domain import of core/: a key belongs to the authenticated member.
from library_service.users.dependencies import CurrentUser

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# How long the request that claimed a key may take before a retry may take it over. Longer
# than any request can run (Stripe's and the database's timeouts are far shorter).
LEASE = timedelta(seconds=60)
PURGE_EXPIRED = "idempotency.purge_expired"

# Answers a retry may not get again: credentials, timing and outages.
_UNSTORED_STATUSES = frozenset({401, 408, 409, 429})
_SCOPE_KEY = "library_service.idempotency_claim"
_HEADER_BYTES = HEADER.lower().encode()
_UNSTORED_HEADERS = frozenset({"content-length"})
_FIRST_POLL_SECONDS = 0.02
_MAX_POLL_SECONDS = 0.2


class IdempotencyKeyReusedError(AppError):
    status_code = 422
    code = "idempotency_key_reused"
    message = (
        "This Idempotency-Key was first sent with another request (another body or path); "
        "use a new key for a new request."
    )


class IdempotencyKeyInUseError(ConflictError):
    code = "idempotency_key_in_use"
    message = "The first request with this Idempotency-Key is still running; retry shortly."
    headers = {"Retry-After": "1"}


class IdempotencyAnswerLostError(ConflictError):
    code = "idempotency_answer_lost"
    message = (
        "The request with this Idempotency-Key was carried out, but its answer was lost; "
        "look up its result instead of retrying."
    )


class IdempotentReplay(Exception):
    """Raised to answer with a key's stored answer instead of running the request."""

    def __init__(self, status_code: int, headers: list[list[str]], body: bytes) -> None:
        super().__init__(status_code)
        self.status_code = status_code
        self.headers = headers
        self.body = body


KeyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        pattern=r"^[\x20-\x7e]+$",
        description=(
            "Makes a retry safe: the same key with the same request, from the same member, "
            "within 24 hours gets the first answer again (with `Idempotent-Replayed: true`) "
            "and changes nothing. Use a new random key (a UUID) for each new request. "
            "1-255 printable ASCII characters. The same key with another body or path "
            "answers 422 `idempotency_key_reused`; while the first request still runs, a "
            "retry waits for its answer, or answers 409 `idempotency_key_in_use`."
        ),
    ),
]

# The 422 of these routes: FastAPI's for malformed input, or ours for a reused key.
IDEMPOTENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "Malformed input, or an Idempotency-Key sent with another request",
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        {"$ref": "#/components/schemas/HTTPValidationError"},
                        {"$ref": "#/components/schemas/ErrorResponse"},
                    ]
                }
            }
        },
    }
}


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


async def idempotency_key(
    request: Request,
    user: CurrentUser,
    uow: UnitOfWorkDep,
    settings: SettingsDep,
    key: KeyHeader = None,
) -> None:
    """The `Idempotency-Key` of a write route (see the module)."""
    if key is None:
        return
    fingerprint = request_hash(request.scope, await request.body())
    held = await claim(
        uow.db,
        user_id=user.id,
        key=key,
        fingerprint=fingerprint,
        ttl=timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS),
        wait_seconds=settings.IDEMPOTENCY_WAIT_SECONDS,
    )
    uow.before_commit.append(held.mark_committed)
    request.scope[_SCOPE_KEY] = held


# For a write route: `dependencies=[Idempotent], responses=IDEMPOTENT_RESPONSES`.
Idempotent = Depends(idempotency_key)


async def _replay(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, IdempotentReplay)
    response = Response(exc.body, status_code=exc.status_code)
    response.raw_headers.extend(
        (name.encode("latin-1"), value.encode("latin-1")) for name, value in exc.headers
    )
    response.raw_headers.append((b"idempotent-replayed", b"true"))
    return response


class IdempotencyMiddleware:
    """Stores the answer of a request that claimed its key, before sending it. Requests
    that are not POSTs with an Idempotency-Key pass straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not _has_key(scope):
            await self.app(scope, receive, send)
            return
        answer = _Answer(scope, send)
        try:
            await self.app(scope, receive, answer.send)
        except BaseException:
            held: Claim | None = scope.get(_SCOPE_KEY)
            if held is not None and not answer.sent:
                await _quietly(held.release(), held)
            raise


def _has_key(scope: Scope) -> bool:
    return any(name == _HEADER_BYTES for name, _ in scope["headers"])


class _Answer:
    """Holds back the answer of a claimed key until it is stored."""

    def __init__(self, scope: Scope, send: Send) -> None:
        self._scope = scope
        self._send = send
        self._start: Message | None = None
        self._body: list[bytes] = []
        self.sent = False

    async def send(self, message: Message) -> None:
        held: Claim | None = self._scope.get(_SCOPE_KEY)
        if held is None:  # answered before the key was claimed (401, 422, a replay)
            await self._send(message)
            return
        if message["type"] == "http.response.start":
            self._start = message
            return
        self._body.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        assert self._start is not None
        body = b"".join(self._body)
        await _quietly(
            held.finish(self._start["status"], self._start.get("headers", []), body), held
        )
        self.sent = True
        await self._send(self._start)
        await self._send({"type": "http.response.body", "body": body})


async def _quietly(step: Any, held: Claim) -> None:
    """Storing or releasing a key must not cost the member the answer itself."""
    try:
        await step
    except Exception:
        logger.exception("could not record the answer for Idempotency-Key %r", held.key)


def install_idempotency(app: FastAPI) -> None:
    app.add_exception_handler(IdempotentReplay, _replay)
    app.add_middleware(IdempotencyMiddleware)


async def purge_expired_keys(ctx: dict[str, Any]) -> int:
    """Worker cron: delete the keys past their expiry (they answer nothing any more)."""
    db: Database = ctx["db"]
    async with db.autocommit_engine.begin() as connection:
        purged = await connection.execute(
            delete(IdempotencyKey).where(IdempotencyKey.expires_at <= clock.now())
        )
    count: int = purged.rowcount
    if count:
        logger.info("purged %d expired idempotency keys", count)
    return count
