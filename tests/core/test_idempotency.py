"""Idempotency-Key on the write endpoints: a retried request answers its first answer and
changes nothing; the key belongs to one member, one request, and 24 hours."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import func, select, text, update

from library_service.core import clock
from library_service.models import Book, Borrowing, IdempotencyKey, Notification, Payment
from library_service.web.idempotency import errors as idempotency_errors
from library_service.web.idempotency import store as idempotency

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
DAY0 = T0.date()
KEY = "9b2f6c1e-3d4a-4e8b-a1f0-7c5d2e9b8a61"


def at(**delta: float) -> Any:
    """Freeze the library clock at T0 + delta."""
    return clock.frozen(T0 + timedelta(**delta))


def borrow_body(book: Book, days: int = 4) -> bytes:
    return json.dumps(
        {"book": book.id, "expected_return_date": str(DAY0 + timedelta(days=days))}
    ).encode()


async def post(
    client: httpx.AsyncClient,
    factory: Any,
    user: Any,
    path: str,
    body: bytes = b"",
    *,
    key: str | bytes | None = KEY,
) -> httpx.Response:
    headers: dict[str, Any] = {**factory.auth(user), "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post(path, content=body, headers=headers)


async def borrow(
    client: httpx.AsyncClient, factory: Any, user: Any, book: Book, **options: Any
) -> httpx.Response:
    days = options.pop("days", 4)
    return await post(client, factory, user, "/api/borrowings/", borrow_body(book, days), **options)


async def scalar(db: Any, statement: Any) -> Any:
    async with db.sessionmaker() as session:
        return await session.scalar(statement)


async def borrowings(db: Any) -> int:
    return int(await scalar(db, select(func.count()).select_from(Borrowing)))


async def inventory(db: Any, book: Book) -> int:
    return int(await scalar(db, select(Book.inventory).where(Book.id == book.id)))


async def keys(db: Any) -> int:
    return int(await scalar(db, select(func.count()).select_from(IdempotencyKey)))


def checkout_sessions_created(stripe_mock: respx.MockRouter) -> int:
    return sum(
        1
        for call in stripe_mock.routes["stripe"].calls
        if call.request.method == "POST" and call.request.url.path == "/v1/checkout/sessions"
    )


@contextmanager
def stripe_slowed(stripe_mock: respx.MockRouter, seconds: float) -> Iterator[None]:
    """Every call to the Stripe API takes `seconds` longer until the block ends."""
    route = stripe_mock.routes["stripe"]
    original = route.side_effect

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(seconds)
        response: httpx.Response = await original(request)
        return response

    route.side_effect = slow
    try:
        yield
    finally:
        route.side_effect = original


@contextmanager
def stripe_down(stripe_mock: respx.MockRouter) -> Iterator[None]:
    route = stripe_mock.routes["stripe"]
    original = route.side_effect
    route.side_effect = httpx.ConnectError
    try:
        yield
    finally:
        route.side_effect = original


def same_answer(first: httpx.Response, again: httpx.Response) -> None:
    assert again.status_code == first.status_code
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"


# -- replays -----------------------------------------------------------------------------


async def test_a_retry_gets_the_first_answer_and_changes_nothing(client, factory, db, stripe_mock):
    member = await factory.user()
    book = await factory.book(inventory=5)
    with at():
        first = await borrow(client, factory, member, book)
        again = await borrow(client, factory, member, book)
    assert first.status_code == 201, first.text
    same_answer(first, again)
    assert again.json()["payments"][0]["session_url"]
    assert await borrowings(db) == 1
    assert await inventory(db, book) == 4
    assert checkout_sessions_created(stripe_mock) == 1
    assert await scalar(db, select(func.count()).select_from(Notification)) == 1
    assert await scalar(db, select(func.count()).select_from(Payment)) == 1


async def test_without_the_header_every_request_runs(client, factory, db):
    member = await factory.user()
    book = await factory.book(inventory=5)
    with at():
        for _ in range(2):
            response = await borrow(client, factory, member, book, key=None)
            assert response.status_code == 201, response.text
            assert "idempotent-replayed" not in response.headers
    assert await borrowings(db) == 2
    assert await keys(db) == 0


async def test_the_member_with_another_token_gets_the_replay(client, factory, db):
    """A key belongs to the member, not to the token: a retry after a token refresh
    still finds its answer."""
    member = await factory.user()
    book = await factory.book()
    with at():
        first = await borrow(client, factory, member, book)
    with at(minutes=59):  # factory.auth signs a new token for each request
        again = await borrow(client, factory, member, book)
    same_answer(first, again)
    assert await borrowings(db) == 1


async def test_a_rule_refusal_is_replayed_too(client, factory, db):
    member = await factory.user()
    book = await factory.book(inventory=0)
    with at():
        refused = await borrow(client, factory, member, book)
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "book_unavailable"
    async with db.sessionmaker() as session, session.begin():
        await session.execute(update(Book).where(Book.id == book.id).values(inventory=1))
    with at():
        again = await borrow(client, factory, member, book)
    same_answer(refused, again)
    assert await borrowings(db) == 0


async def test_a_return_with_a_key_returns_once(client, factory, db):
    member = await factory.user()
    book = await factory.book(inventory=1)
    with at():
        borrowed = (await borrow(client, factory, member, book, key=None)).json()
        path = f"/api/borrowings/{borrowed['id']}/return/"
        first = await post(client, factory, member, path, key="return-1")
        again = await post(client, factory, member, path, key="return-1")
        second = await post(client, factory, member, path, key="return-2")
    assert first.status_code == 200, first.text
    same_answer(first, again)
    assert second.status_code == 400  # a new key is a new request: already returned
    assert second.json()["code"] == "already_returned"
    assert await inventory(db, book) == 1


async def test_an_extension_with_a_key_is_charged_once(client, factory, db, stripe_mock):
    member = await factory.user()
    book = await factory.book()
    with at():
        borrowed = (await borrow(client, factory, member, book, key=None)).json()
        path = f"/api/borrowings/{borrowed['id']}/extend/"
        body = json.dumps({"expected_return_date": str(DAY0 + timedelta(days=6))}).encode()
        first = await post(client, factory, member, path, body)
        again = await post(client, factory, member, path, body)
    assert first.status_code == 200, first.text
    same_answer(first, again)
    assert len(again.json()["payments"]) == 2
    assert checkout_sessions_created(stripe_mock) == 2  # the borrowing's and the extension's
    extensions = await scalar(
        db, select(Borrowing.extensions).where(Borrowing.id == borrowed["id"])
    )
    assert extensions == 1


async def test_a_renewal_with_a_key_opens_one_session(client, factory, db, sandbox, stripe_mock):
    member = await factory.user()
    book = await factory.book()
    with at():
        borrowed = (await borrow(client, factory, member, book, key=None)).json()
    payment = borrowed["payments"][0]
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            update(Payment).where(Payment.id == payment["id"]).values(status="EXPIRED")
        )
    sandbox.mark_expired(payment["session_id"])
    with at():
        path = f"/api/payments/{payment['id']}/renew/"
        first = await post(client, factory, member, path)
        again = await post(client, factory, member, path)
    assert first.status_code == 200, first.text
    same_answer(first, again)
    assert first.json()["session_id"] != payment["session_id"]
    assert checkout_sessions_created(stripe_mock) == 2  # the borrowing's and the renewal's


# -- the key belongs to one request, one member, 24 hours ----------------------------------


async def test_the_same_key_with_another_body_is_422(client, factory, db):
    member = await factory.user()
    book = await factory.book()
    with at():
        first = await borrow(client, factory, member, book, days=4)
        other = await borrow(client, factory, member, book, days=5)
    assert first.status_code == 201, first.text
    assert other.status_code == 422, other.text
    assert other.json()["code"] == "idempotency_key_reused"
    assert other.json()["detail"]
    assert await borrowings(db) == 1


async def test_the_same_key_on_another_path_is_422(client, factory, db):
    member = await factory.user()
    book = await factory.book()
    with at():
        borrowed = (await borrow(client, factory, member, book)).json()
        other = await post(client, factory, member, f"/api/borrowings/{borrowed['id']}/return/")
    assert other.status_code == 422, other.text
    assert other.json()["code"] == "idempotency_key_reused"
    active = await scalar(
        db, select(Borrowing.actual_return_date).where(Borrowing.id == borrowed["id"])
    )
    assert active is None


async def test_keys_of_different_members_are_independent(client, factory, db):
    alice, bob = await factory.user(), await factory.user()
    book = await factory.book(inventory=5)
    with at():
        for_alice = await borrow(client, factory, alice, book)
        for_bob = await borrow(client, factory, bob, book)
    assert for_alice.status_code == for_bob.status_code == 201
    assert "idempotent-replayed" not in for_bob.headers
    assert for_alice.json()["id"] != for_bob.json()["id"]
    assert await borrowings(db) == 2


async def test_a_key_expires_after_24_hours(client, factory, db, app):
    member = await factory.user()
    book = await factory.book(inventory=5)
    with at():
        first = await borrow(client, factory, member, book)
    with at(hours=23, minutes=59):
        same_answer(first, await borrow(client, factory, member, book))
    with at(hours=24, minutes=1):
        assert await idempotency.purge_expired_keys({"db": db}) == 1
        later = await borrow(client, factory, member, book)
    assert later.status_code == 201, later.text
    assert "idempotent-replayed" not in later.headers
    assert later.json()["id"] != first.json()["id"]
    assert await borrowings(db) == 2


async def test_the_purge_deletes_a_bounded_batch_per_run(db, factory, monkeypatch):
    monkeypatch.setattr(idempotency, "PURGE_BATCH", 2)
    monkeypatch.setattr(idempotency, "PURGE_BATCHES", 2)
    member = await factory.user()
    async with db.sessionmaker() as session, session.begin():
        for index, hours in enumerate([-5, -4, -3, -2, -1, 1]):
            session.add(
                IdempotencyKey(
                    user_id=member.id,
                    key=f"key-{index}",
                    request_hash=b"x",
                    expires_at=T0 + timedelta(hours=hours),
                )
            )

    async def keys_left() -> list[str]:
        async with db.sessionmaker() as session:
            found = await session.scalars(
                select(IdempotencyKey.key)
                .where(IdempotencyKey.user_id == member.id)
                .order_by(IdempotencyKey.key)
            )
            return list(found)

    with at():
        assert await idempotency.purge_expired_keys({"db": db}) == 4  # two batches of two
        assert await keys_left() == ["key-4", "key-5"]  # the oldest went first
        assert await idempotency.purge_expired_keys({"db": db}) == 1  # the next run
        assert await idempotency.purge_expired_keys({"db": db}) == 0
    assert await keys_left() == ["key-5"]  # not expired yet


async def test_an_expired_key_is_reused_even_before_the_purge(client, factory, db):
    member = await factory.user()
    book = await factory.book(inventory=5)
    with at():
        first = await borrow(client, factory, member, book)
    with at(hours=25):
        later = await borrow(client, factory, member, book, days=5)  # another body: fine now
    assert later.status_code == 201, later.text
    assert later.json()["id"] != first.json()["id"]


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("", id="empty"),
        pytest.param("k" * 256, id="too-long"),
        pytest.param("ключ".encode(), id="not-ascii"),
        pytest.param("tab\there", id="control-character"),
    ],
)
async def test_a_malformed_key_is_422(client, factory, db, key):
    member = await factory.user()
    book = await factory.book()
    with at():
        response = await borrow(client, factory, member, book, key=key)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert await borrowings(db) == 0


async def test_a_key_of_255_printable_characters_is_fine(client, factory):
    member = await factory.user()
    book = await factory.book()
    key = "".join(chr(32 + i % 95) for i in range(1, 256))  # every one, spaces inside
    assert len(key) == 255 and key == key.strip()
    with at():
        response = await borrow(client, factory, member, book, key=key)
    assert response.status_code == 201, response.text


async def test_a_key_needs_a_member(client, factory):
    book = await factory.book()
    response = await client.post(
        "/api/borrowings/", content=borrow_body(book), headers={"Idempotency-Key": KEY}
    )
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


# -- concurrency ---------------------------------------------------------------------------


async def test_concurrent_requests_with_one_key_run_once(client, factory, db, stripe_mock):
    member = await factory.user()
    book = await factory.book(inventory=5)
    with at(), stripe_slowed(stripe_mock, 0.3):
        one, two = await asyncio.gather(
            borrow(client, factory, member, book), borrow(client, factory, member, book)
        )
    assert one.status_code == two.status_code == 201, (one.text, two.text)
    assert one.content == two.content
    # The one that came second waited for the first one's answer.
    assert sorted(r.headers.get("idempotent-replayed", "-") for r in (one, two)) == ["-", "true"]
    assert await borrowings(db) == 1
    assert await inventory(db, book) == 4
    assert checkout_sessions_created(stripe_mock) == 1


async def test_a_retry_that_cannot_wait_is_409(
    client, factory, db, stripe_mock, monkeypatch, settings
):
    monkeypatch.setattr(settings, "IDEMPOTENCY_WAIT_SECONDS", 0)
    member = await factory.user()
    book = await factory.book(inventory=5)
    with at(), stripe_slowed(stripe_mock, 0.3):
        first = asyncio.create_task(borrow(client, factory, member, book))
        await asyncio.sleep(0.1)  # the first has claimed the key and waits for Stripe
        busy = await borrow(client, factory, member, book)
        done = await first
    assert busy.status_code == 409, busy.text
    assert busy.json()["code"] == "idempotency_key_in_use"
    assert busy.headers["retry-after"] == "1"
    assert done.status_code == 201
    with at():
        same_answer(done, await borrow(client, factory, member, book))
    assert await borrowings(db) == 1


# -- what is not stored, and crashes ----------------------------------------------------------


async def test_a_503_is_not_stored_and_a_retry_runs_again(client, factory, db, stripe_mock):
    member = await factory.user()
    book = await factory.book()
    with at(), stripe_down(stripe_mock):
        down = await borrow(client, factory, member, book)
    assert down.status_code == 503, down.text
    assert down.json()["code"] == "payment_provider_unavailable"
    assert await keys(db) == 0
    with at():
        retried = await borrow(client, factory, member, book)
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert await borrowings(db) == 1


async def test_a_500_is_not_stored(client, factory, db, monkeypatch):
    from library_service.borrowings.service import BorrowingService

    member = await factory.user()
    book = await factory.book()

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    with monkeypatch.context() as patch:
        patch.setattr(BorrowingService, "borrow", broken)
        with at():
            crashed = await borrow(client, factory, member, book)
    assert crashed.status_code == 500
    assert crashed.json()["code"] == "internal_error"
    assert await keys(db) == 0
    with at():
        assert (await borrow(client, factory, member, book)).status_code == 201


async def test_an_answer_lost_after_the_commit_never_runs_twice(
    client, factory, db, settings, monkeypatch
):
    """A crash between the commit and storing the answer: the key knows its operation ran."""
    member = await factory.user()
    book = await factory.book(inventory=5)

    async def lost(self: Any, *args: Any) -> None:
        raise ConnectionError("the process died here")

    with monkeypatch.context() as patch:
        patch.setattr(idempotency.Claim, "finish", lost)
        with at():
            first = await borrow(client, factory, member, book)
    assert first.status_code == 201  # the member got it; the key did not
    with at(seconds=1):  # the lease still runs: as if the first were still answering
        monkeypatch.setattr(settings, "IDEMPOTENCY_WAIT_SECONDS", 0)
        busy = await borrow(client, factory, member, book)
    assert busy.json()["code"] == "idempotency_key_in_use"
    with at(seconds=61):
        lost_answer = await borrow(client, factory, member, book)
    assert lost_answer.status_code == 409, lost_answer.text
    assert lost_answer.json()["code"] == "idempotency_answer_lost"
    assert await borrowings(db) == 1
    assert await inventory(db, book) == 4


async def test_a_claim_that_lapsed_before_its_commit_is_taken_over(client, factory, db):
    """A crash before the commit: nothing happened, and after the lease a retry runs it;
    should the first request wake up after all, it can no longer commit."""
    member = await factory.user()
    book = await factory.book(inventory=5)
    body = borrow_body(book)
    scope = {"method": "POST", "path": "/api/borrowings/", "query_string": b""}
    with at():
        crashed = await idempotency.claim(
            db,
            user_id=member.id,
            key=KEY,
            fingerprint=idempotency.request_hash(scope, body),
            ttl=timedelta(hours=24),
            wait_seconds=0,
        )
    with at(seconds=61):
        retried = await borrow(client, factory, member, book)
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    async with db.sessionmaker() as session:
        with pytest.raises(idempotency_errors.IdempotencyKeyInUseError):
            await crashed.mark_committed(session)
        await session.rollback()
    assert await borrowings(db) == 1


async def test_keys_are_stored_with_their_answer(client, factory, db):
    member = await factory.user()
    book = await factory.book()
    with at():
        first = await borrow(client, factory, member, book)
    async with db.sessionmaker() as session:
        row = await session.get(IdempotencyKey, (member.id, KEY))
    assert row is not None
    assert row.status_code == 201
    assert row.response_body == first.content
    assert row.owner is None and row.locked_until is None
    assert row.committed_at is not None
    assert row.expires_at == T0 + timedelta(hours=24)
    assert ["content-type", "application/json"] in row.response_headers
    assert await scalar(db, text("SELECT count(*) FROM idempotency_keys")) == 1


# -- cost ------------------------------------------------------------------------------------


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement asyncpg sends (simple queries and prepared-statement executions)."""
    import asyncpg
    import asyncpg.prepared_stmt

    sent: list[str] = []
    execute = asyncpg.connection.Connection.execute
    fetch = asyncpg.prepared_stmt.PreparedStatement.fetch

    async def logged_execute(self, query, *args, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(query)
        return await execute(self, query, *args, **kwargs)

    async def logged_fetch(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(self.get_query())
        return await fetch(self, *args, **kwargs)

    monkeypatch.setattr(asyncpg.connection.Connection, "execute", logged_execute)
    monkeypatch.setattr(asyncpg.prepared_stmt.PreparedStatement, "fetch", logged_fetch)
    return sent


async def test_the_header_costs_three_statements_and_its_absence_none(client, factory, statements):
    member = await factory.user()
    book = await factory.book()
    with at():
        statements.clear()
        assert (await borrow(client, factory, member, book, key=None)).status_code == 201
        without = list(statements)
        statements.clear()
        assert (await borrow(client, factory, member, book)).status_code == 201
        with_key = list(statements)
    assert not any("idempotency_keys" in sql for sql in without)
    on_keys = [sql.split()[0] for sql in with_key if "idempotency_keys" in sql]
    assert on_keys == ["INSERT", "UPDATE", "UPDATE"]  # claim; mark, in the commit; answer
    assert len(with_key) == len(without) + 3
    commit = next(i for i, sql in enumerate(with_key) if sql.startswith("COMMIT"))
    assert "idempotency_keys" in with_key[commit - 1]  # marked in the borrowing's transaction
