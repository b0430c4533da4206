"""Fixtures of the desk's tests: a member of staff and the calls they make."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from library_service.models import User
from tests.factories import the_payment


@pytest.fixture
async def staff(factory) -> User:
    return await factory.staff()


@pytest.fixture
async def payment(client, factory) -> dict[str, Any]:
    """The PENDING fee of a new member's borrowing, made through the API on day 0."""
    _, borrowing = await factory.borrowed(client)
    return the_payment(borrowing)


def _headers(factory: Any, who: User, key: str | None) -> dict[str, str]:
    return factory.auth(who) | ({"Idempotency-Key": key} if key else {})


async def take_cash(
    client: httpx.AsyncClient, factory: Any, who: User, payment_id: int, *, key: str | None = None
) -> httpx.Response:
    url = f"/api/payments/{payment_id}/cash/"
    return await client.post(url, headers=_headers(factory, who, key))


async def waive(
    client: httpx.AsyncClient,
    factory: Any,
    who: User,
    payment_id: int,
    reason: Any = "Flooded",
    *,
    key: str | None = None,
) -> httpx.Response:
    body = {} if reason is None else {"reason": reason}
    url = f"/api/payments/{payment_id}/waive/"
    return await client.post(url, json=body, headers=_headers(factory, who, key))
