"""One error base for every rule the service enforces, rendered as `{"detail", "code"}`."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

T = TypeVar("T")


class AppError(Exception):
    """A rule was broken: `message` is a sentence for humans, `code` is for programs.

    Each refusal is a subclass in its domain's `errors.py` that sets the three class
    attributes; a message that names values is passed when raising.
    """

    status_code = 400
    code = "bad_request"
    message = "The request breaks a rule."
    headers: dict[str, str] | None = None

    def __init__(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        super().__init__(self.message)


def found(value: T | None, missing: type[AppError]) -> T:
    """`value`, unless there is none: then the refusal `missing` is raised."""
    if value is None:
        raise missing
    return value


class NotFoundError(AppError):
    status_code = 404
    code = "not_found"


class AuthenticationError(AppError):
    status_code = 401
    code = "not_authenticated"
    message = "Authentication credentials were not provided."
    headers = {"WWW-Authenticate": "Bearer"}


class PermissionDeniedError(AppError):
    status_code = 403
    code = "permission_denied"


class ConflictError(AppError):
    status_code = 409
    code = "conflict"


class RateLimitedError(AppError):
    status_code = 429
    code = "rate_limited"
    message = "Too many failed login attempts; try again later."

    def __init__(self, *, retry_after: int) -> None:
        super().__init__()
        self.headers = {"Retry-After": str(retry_after)}


class ServiceUnavailableError(AppError):
    status_code = 503
    code = "service_unavailable"
    headers = {"Retry-After": "10"}


_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
}


class ErrorResponse(BaseModel):
    """Every refused request: a sentence for people and a code for programs."""

    detail: str
    code: str


_DESCRIPTIONS = {
    400: "A rule was broken (see `code`)",
    401: "Not authenticated, or the token is invalid",
    403: "Staff only",
    404: "Not found (or not yours)",
    409: "Changed meanwhile; retry",
    413: "Request body too large",
    429: "Too many attempts",
    503: "A dependency (database, payment provider) is unavailable; retry",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the error answers a router gives."""
    return {
        status: {"model": ErrorResponse, "description": _DESCRIPTIONS[status]}
        for status in (*statuses, 503)
    }


def error_body(detail: str, code: str) -> dict[str, str]:
    return {"detail": detail, "code": code}


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return JSONResponse(
        error_body(exc.message, exc.code), status_code=exc.status_code, headers=exc.headers
    )


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        # A body that is not even UTF-8 is malformed JSON: answer like FastAPI does for that.
        return JSONResponse(
            {
                "detail": [
                    {
                        "type": "json_invalid",
                        "loc": ["body"],
                        "msg": "JSON decode error",
                        "input": {},
                        "ctx": {"error": "request body is not valid UTF-8"},
                    }
                ]
            },
            status_code=422,
        )
    code = _HTTP_CODES.get(exc.status_code, "error")
    return JSONResponse(
        error_body(str(exc.detail), code),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


# SQLSTATEs of a server that cannot serve now: connection exceptions (class 08), shutting
# down, crashed or starting up (57P01-57P03), too many connections (53300).
_OUTAGE_SQLSTATES = ("08", "57P", "53300")


def _is_outage(exc: DBAPIError) -> bool:
    sqlstate: str = getattr(exc.orig, "sqlstate", None) or ""
    return exc.connection_invalidated or sqlstate.startswith(_OUTAGE_SQLSTATES)


async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    # A lost, restarting or exhausted database is an outage, not a bug in the request: say
    # so with 503 (clients and load balancers retry it) instead of a 500.
    if isinstance(exc, DBAPIError) and not _is_outage(exc):
        raise exc
    logger.warning("database unavailable: %s", exc)
    return JSONResponse(
        error_body("The database is unavailable, please retry shortly.", "database_unavailable"),
        status_code=503,
        headers={"Retry-After": "5"},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(PoolTimeoutError, _database_unavailable)
    app.add_exception_handler(DBAPIError, _database_unavailable)
    app.add_exception_handler(OSError, _database_unavailable)


class InvalidDateRangeError(AppError):
    """A report's `since` after its `until` (the audit record, payment totals)."""

    code = "invalid_date_range"
    message = "`since` must be on or before `until`."
