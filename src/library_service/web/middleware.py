"""Pure ASGI middleware (no per-request task or body copying, unlike BaseHTTPMiddleware)."""

from __future__ import annotations

import json
import logging
import uuid

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from library_service.core.logging import request_id_var

logger = logging.getLogger(__name__)

_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class ServiceMiddleware:
    """Per request: accept `/api/...` paths without their trailing slash (served as if it were
    there, no redirect), carry an `X-Request-ID`, add security headers, and refuse bodies
    larger than `max_body_bytes` with 413."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/api/") and not path.endswith("/"):
            scope = dict(scope, path=path + "/", raw_path=scope.get("raw_path", b"") + b"/")
        request_id, declared_size = _read_headers(scope)
        token = request_id_var.set(request_id)
        response = _Response(send, request_id)
        try:
            if declared_size > self.max_body_bytes:
                raise BodyTooLargeError(self.max_body_bytes)
            await self.app(scope, _limited(receive, self.max_body_bytes), response.send)
        except BodyTooLargeError:  # raised outside FastAPI's request parsing
            await _send_json(response.send, 413, _too_large_body(self.max_body_bytes))
        except Exception:
            # A bug: answer JSON with the request id (to find the log line) instead of the
            # server's plain-text 500 and a closed connection.
            logger.exception("unexpected error answering %s %s", scope["method"], path)
            if response.started:
                raise  # part of an answer is out: only closing the connection ends it
            await _send_json(response.send, 500, _internal_error_body(request_id))
        finally:
            request_id_var.reset(token)


def _read_headers(scope: Scope) -> tuple[str, int]:
    """The request id (the client's, or a new one) and the declared body size."""
    request_id = ""
    declared_size = 0
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            request_id = value.decode("latin-1")[:64]
        elif name == b"content-length" and value.isdigit():
            declared_size = int(value)
    return request_id or uuid.uuid4().hex, declared_size


class _Response:
    """The response on its way out: adds the headers every answer carries."""

    def __init__(self, send: Send, request_id: str) -> None:
        self._send = send
        self._request_id = request_id.encode("latin-1")
        self.started = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            headers = list(message.get("headers", []))
            headers.append((b"x-request-id", self._request_id))
            headers.extend(_SECURITY_HEADERS)
            message = dict(message, headers=headers)
        await self._send(message)


def _limited(receive: Receive, max_bytes: int) -> Receive:
    """Count the body as it arrives: chunked bodies declare no Content-Length."""
    received = 0

    async def limited_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise BodyTooLargeError(max_bytes)
        return message

    return limited_receive


class BodyTooLargeError(HTTPException):
    """An HTTPException, so FastAPI's body parsing lets it through as a 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=_too_large_body(limit)["detail"])


def _too_large_body(limit: int) -> dict[str, str]:
    return {"detail": f"Request body is larger than {limit} bytes.", "code": "request_too_large"}


def _internal_error_body(request_id: str) -> dict[str, str]:
    return {
        "detail": "Something went wrong on our side; it has been logged.",
        "code": "internal_error",
        "request_id": request_id,
    }


async def _send_json(send: Send, status: int, body: dict[str, str]) -> None:
    content = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})
