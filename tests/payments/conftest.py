"""Fixtures of the payments tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import the_payment


@pytest.fixture
async def payment(client, factory) -> dict[str, Any]:
    """The PENDING fee of a new member's borrowing, made through the API on day 0."""
    _, borrowing = await factory.borrowed(client)
    return the_payment(borrowing)
