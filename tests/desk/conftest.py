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


async def take_cash(
    client: httpx.AsyncClient, factory: Any, who: User, payment_id: int
) -> httpx.Response:
    return await client.post(f"/api/payments/{payment_id}/cash/", headers=factory.auth(who))


async def waive(
    client: httpx.AsyncClient, factory: Any, who: User, payment_id: int, reason: Any = "Flooded"
) -> httpx.Response:
    body = {} if reason is None else {"reason": reason}
    url = f"/api/payments/{payment_id}/waive/"
    return await client.post(url, json=body, headers=factory.auth(who))
