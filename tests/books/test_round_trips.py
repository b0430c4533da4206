"""Round trips to PostgreSQL for a page of the catalogue, the busiest read (see the
Performance section of the README): a change that adds one should be a deliberate one."""

from __future__ import annotations

from tests.factories import round_trips


async def test_catalogue_page_round_trips(client, factory):
    await factory.book(inventory=3)
    with round_trips() as sent:
        assert (await client.get("/api/books/?limit=20")).status_code == 200
    # The page, and its total (counted up to a cap, core/pagination.py): counted here
    # because the tests keep no count cache (BOOK_COUNT_CACHE_SECONDS=0); in production a
    # count serves for 5 s.
    assert sent == ["SELECT books", "SELECT count"]
