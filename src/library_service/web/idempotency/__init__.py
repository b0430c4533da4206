"""Retry-safe writes: the `Idempotency-Key` header.

A front end that lost an answer sends the write again with the same key, and gets the first
answer again (status, body, headers, and `Idempotent-Replayed: true`) while the operation
runs once. A key belongs to the member who sent it (the authenticated user, whichever of
their tokens carries it), for `IDEMPOTENCY_KEY_HOURS`.

1. The route dependency (`idempotent(...)`, route.py), runs after authentication: it claims
   the key in `idempotency_keys` for this request, with a lease, or answers from it: the
   stored answer, 422 `idempotency_key_reused` if the key came with another request, or,
   while the request that claimed it still runs, waits for its answer and replays it (409
   `idempotency_key_in_use` after `IDEMPOTENCY_WAIT_SECONDS`).
2. Every write phase of the request marks the key committed in its own transaction (the
   request's before-commit hooks, which every unit of work made for the request runs): if
   the effects commit, so does the mark, and a key marked so never runs its operation
   again. A request whose lease has lapsed and whose key was taken over by a retry cannot
   commit (the mark finds another owner).
3. `IdempotencyMiddleware` (middleware.py) stores the answer, then sends it. Stored: 2xx,
   and 4xx refusals a retry would get again. Not stored: 5xx (a 503 outage included), 401,
   408, 409 and 429; the key is released instead, and a retry runs the operation again.

If the process dies between the commit and storing the answer, the key stays marked
committed without an answer: once its lease lapses, a retry answers 409
`idempotency_answer_lost` rather than running the operation twice. If it dies before the
commit, nothing changed, and a retry after the lease runs the operation.

A request without the header pays nothing: no query, no buffering of its answer.
"""

from __future__ import annotations

from library_service.web.idempotency.middleware import install_idempotency
from library_service.web.idempotency.route import IDEMPOTENT_RESPONSES, idempotent
from library_service.web.idempotency.store import (
    PURGE_EXPIRED,
    expired_keys_batch,
    purge_expired_keys,
)

__all__ = [
    "IDEMPOTENT_RESPONSES",
    "PURGE_EXPIRED",
    "expired_keys_batch",
    "idempotent",
    "install_idempotency",
    "purge_expired_keys",
]
