"""What a request with an Idempotency-Key can be answered instead of running."""

from __future__ import annotations

from library_service.core.errors import AppError, ConflictError


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
