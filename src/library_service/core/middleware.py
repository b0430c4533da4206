"""Pure ASGI middleware (no per-request task or body copying, unlike BaseHTTPMiddleware)."""

from __future__ import annotations

import contextvars
import json
import uuid

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

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
        send = _with_response_headers(send, request_id)
        try:
            if declared_size > self.max_body_bytes:
                raise BodyTooLargeError(self.max_body_bytes)
            await self.app(scope, _limited(receive, self.max_body_bytes), send)
        except BodyTooLargeError:  # raised outside FastAPI's request parsing
            await _too_large(send, self.max_body_bytes)
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


def _with_response_headers(send: Send, request_id: str) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            headers.append((b"x-request-id", request_id.encode("latin-1")))
            headers.extend(_SECURITY_HEADERS)
            message = dict(message, headers=headers)
        await send(message)

    return send_with_headers


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
        super().__init__(status_code=413, detail=_too_large_message(limit))


def _too_large_message(limit: int) -> str:
    return f"Request body is larger than {limit} bytes."


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"detail": _too_large_message(limit), "code": "request_too_large"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
