"""A list whose filters matched more than the exact-count cap answers the same estimate for
ESTIMATED_COUNT_CACHE_SECONDS without counting again, while its page is read afresh; a list
under the cap is counted every time (core/pagination.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import pytest

from library_service.core import pagination
from library_service.models import Book
from tests.factories import TODAY, Factory, round_trips

Add = Callable[[Factory, Book], Awaitable[int]]  # adds one row the list shows, returns its id


async def a_kowalski(factory: Factory, book: Book) -> int:
    return (await factory.member(first_name="Jan", last_name="Kowalski")).id


async def a_nowak(factory: Factory, book: Book) -> int:
    return (await factory.member(first_name="Ada", last_name="Nowak")).id


async def an_active_loan(factory: Factory, book: Book) -> int:
    return (await factory.borrowing(await factory.member(), book)).id


async def a_returned_loan(factory: Factory, book: Book) -> int:
    return (await factory.borrowing(await factory.member(), book, returned=TODAY)).id


async def a_payment(factory: Factory, book: Book, status: str) -> int:
    borrowing = await factory.borrowing(await factory.member(), book)
    return (await factory.payment(borrowing, status=status)).id


async def a_hold(factory: Factory, book: Book, status: str) -> int:
    return (await factory.hold(await factory.member(), book, status=status)).id


LISTS = [
    pytest.param(
        ("/api/users/?search=kowalski", a_kowalski),
        ("/api/users/?search=nowak", a_nowak),
        id="members",
    ),
    pytest.param(
        ("/api/borrowings/?is_active=true", an_active_loan),
        ("/api/borrowings/?is_active=false", a_returned_loan),
        id="borrowings",
    ),
    pytest.param(
        ("/api/payments/?status=PENDING", partial(a_payment, status="PENDING")),
        ("/api/payments/?status=PAID", partial(a_payment, status="PAID")),
        id="payments",
    ),
    pytest.param(
        ("/api/holds/?status=WAITING", partial(a_hold, status="WAITING")),
        ("/api/holds/?status=READY", partial(a_hold, status="READY")),
        id="holds",
    ),
]


@pytest.fixture
def kept_estimates(settings, monkeypatch):
    monkeypatch.setattr(pagination, "EXACT_COUNT_LIMIT", 3)
    monkeypatch.setattr(settings, "ESTIMATED_COUNT_CACHE_SECONDS", 60)
    pagination.forget_estimates()
    yield
    pagination.forget_estimates()


@pytest.mark.parametrize(("past_the_cap", "under_it"), LISTS)
async def test_an_estimate_is_reused_and_an_exact_count_is_not(
    client, factory, kept_estimates, past_the_cap: tuple[str, Add], under_it: tuple[str, Add]
):
    headers = factory.auth(await factory.staff())
    book = await factory.book(inventory=9)

    async def listed(url: str) -> tuple[dict[str, Any], list[str]]:
        with round_trips() as sent:
            response = await client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        return response.json(), sent

    url, add = past_the_cap
    for _ in range(5):
        await add(factory, book)
    first, sent = await listed(url)
    assert first["count"] > 3  # past the cap of 3: the planner's estimate
    assert "EXPLAIN" in sent

    newest = await add(factory, book)
    again, sent = await listed(url)
    assert again["count"] == first["count"]
    assert "EXPLAIN" not in sent and "SELECT count" not in sent
    assert len(sent) == 2  # who is calling, and the page without its count
    assert newest in [row["id"] for row in again["results"]]  # the page itself is fresh

    url, add = under_it
    await add(factory, book)
    assert (await listed(url))[0]["count"] == 1
    await add(factory, book)
    assert (await listed(url))[0]["count"] == 2  # exact: counted again
