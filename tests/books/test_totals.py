"""The catalogue's total is reused for BOOK_COUNT_CACHE_SECONDS, and recounted after the
catalogue changes through this process."""

from __future__ import annotations

import pytest

from library_service.books.repository import BookRepository
from tests.factories import BOOK_FIELDS


@pytest.fixture
def cached_totals(settings, monkeypatch):
    monkeypatch.setattr(settings, "BOOK_COUNT_CACHE_SECONDS", 60)
    BookRepository.forget_totals()
    yield
    BookRepository.forget_totals()


async def total(client, query: str = "") -> int:
    response = await client.get(f"/api/books/{query}")
    assert response.status_code == 200
    return response.json()["count"]


async def test_total_is_reused_within_its_lifetime(client, factory, cached_totals):
    await factory.book(title="One")
    assert await total(client) == 1
    await factory.book(title="Two")  # written behind the API's back
    assert await total(client) == 1
    assert await total(client, "?search=Two") == 1  # another filter is counted afresh


async def test_changes_through_the_api_recount(client, factory, cached_totals):
    staff = await factory.staff()
    book = await factory.book(title="One")
    assert await total(client) == 1
    created = await client.post(
        "/api/books/", json={**BOOK_FIELDS, "title": "Two"}, headers=factory.auth(staff)
    )
    assert created.status_code == 201
    assert await total(client) == 2
    assert (
        await client.delete(f"/api/books/{book.id}/", headers=factory.auth(staff))
    ).status_code == 204
    assert await total(client) == 1


async def test_without_a_lifetime_every_request_counts(client, factory):
    await factory.book(title="One")
    assert await total(client) == 1
    await factory.book(title="Two")
    assert await total(client) == 2
