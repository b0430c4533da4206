"""Holds back the answer of a request that claimed its key until the answer is stored."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from library_service.web.idempotency.errors import IdempotentReplay
from library_service.web.idempotency.route import HEADER, SCOPE_KEY
from library_service.web.idempotency.store import Claim

logger = logging.getLogger(__name__)

_HEADER_BYTES = HEADER.lower().encode()


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
    without an Idempotency-Key pass straight through; so do those whose route takes none
    (nothing claims their key), whatever their method."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_key(scope):
            await self.app(scope, receive, send)
            return
        answer = _Answer(scope, send)
        try:
            await self.app(scope, receive, answer.send)
        except BaseException:
            held: Claim | None = scope.get(SCOPE_KEY)
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
        held: Claim | None = self._scope.get(SCOPE_KEY)
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
