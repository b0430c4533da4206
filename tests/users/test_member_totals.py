"""A member search that matched more than the exact-count cap answers its estimate again for
ESTIMATED_COUNT_CACHE_SECONDS without counting; a search under the cap is counted every time."""

from __future__ import annotations

import pytest

from library_service.core import pagination
from tests.factories import round_trips

USERS = "/api/users/"


@pytest.fixture
def kept_estimates(settings, monkeypatch):
    monkeypatch.setattr(pagination, "EXACT_COUNT_LIMIT", 3)
    monkeypatch.setattr(settings, "ESTIMATED_COUNT_CACHE_SECONDS", 60)
    pagination.forget_estimates()
    yield
    pagination.forget_estimates()


async def search(client, headers, term: str) -> dict:
    response = await client.get(USERS, params={"search": term}, headers=headers)
    assert response.status_code == 200
    return response.json()


async def test_an_estimate_is_reused_and_an_exact_count_is_not(client, factory, kept_estimates):
    headers = factory.auth(await factory.staff(last_name="Desk"))
    for n in range(5):
        await factory.member(first_name=f"Jan{n}", last_name="Kowalski")
    await factory.member(first_name="Ada", last_name="Nowak")

    with round_trips() as sent:
        first = await search(client, headers, "kowalski")
    assert first["count"] > 3  # past the cap of 3: the planner's estimate
    assert "EXPLAIN" in sent

    newcomer = await factory.member(first_name="Late", last_name="Kowalski")
    with round_trips() as sent:
        again = await search(client, headers, "kowalski")
    assert again["count"] == first["count"]
    assert "EXPLAIN" not in sent and "SELECT count" not in sent
    assert sent.count("SELECT users") == 2  # the caller, and the page without a count
    assert newcomer.id in [member["id"] for member in again["results"]]  # the page is fresh

    assert (await search(client, headers, "nowak"))["count"] == 1
    await factory.member(first_name="Ewa", last_name="Nowak")
    assert (await search(client, headers, "nowak"))["count"] == 2  # exact: counted again
