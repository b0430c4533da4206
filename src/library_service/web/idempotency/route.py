"""The write routes' side: the `Idempotency-Key` header, its documentation and the
dependency that claims the key before the route runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.params import Depends as DependsParam

from library_service.web.dependencies import SettingsDep, add_before_commit
from library_service.web.idempotency.store import claim, request_hash

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
SCOPE_KEY = "library_service.idempotency_claim"


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


def idempotent(current_user_id: Callable[..., Awaitable[int]]) -> DependsParam:
    """The dependency of a write route that takes an `Idempotency-Key`: keys belong to the
    user `current_user_id` resolves (a dependency of the caller's: web/ knows no domain).

    For a write route: `dependencies=[Idempotent], responses=IDEMPOTENT_RESPONSES`."""

    async def idempotency_key(
        request: Request,
        settings: SettingsDep,
        # A default, not an Annotated[...]: annotations are strings here, and the closure's
        # `current_user_id` is not among the module's names they are resolved in.
        user_id: int = Depends(current_user_id),
        key: KeyHeader = None,
    ) -> None:
        if key is None:
            return
        fingerprint = request_hash(request.scope, await request.body())
        held = await claim(
            request.app.state.db,
            user_id=user_id,
            key=key,
            fingerprint=fingerprint,
            ttl=timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS),
            wait_seconds=settings.IDEMPOTENCY_WAIT_SECONDS,
        )
        # Every write phase of this request marks the key, whichever unit of work runs it.
        add_before_commit(request, held.mark_committed)
        request.scope[SCOPE_KEY] = held

    dependency: DependsParam = Depends(idempotency_key)
    return dependency
