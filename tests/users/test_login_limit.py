"""The login limit holds under bursts, cannot lock a known member out, and a password change
ends every token issued before it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
import pytest
import uvicorn

from library_service.cli import server_options
from library_service.core.queue import connect_queue
from library_service.dev.embedded import free_port
from library_service.main import create_app
from library_service.users import service as user_service

LIMIT = 5


@pytest.fixture
async def limited(app, settings, monkeypatch):
    monkeypatch.setattr(settings, "LOGIN_RATE_LIMIT", LIMIT)
    monkeypatch.setattr(settings, "LOGIN_RATE_LIMIT_PER_ADDRESS", LIMIT)
    monkeypatch.setattr(settings, "LOGIN_RATE_WINDOW_SECONDS", 60)


@asynccontextmanager
async def redis_unreachable(app, *, hanging: bool = False) -> AsyncIterator[None]:
    """Every call to Redis fails: refused, as when it is down, or (`hanging`) never
    answered, as when a Redis too busy to answer still takes connections."""
    port = 1
    if hanging:

        async def never_answer(reader: asyncio.StreamReader, _: asyncio.StreamWriter) -> None:
            while await reader.read(4096):
                pass

        server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
    stand_in = connect_queue(f"redis://127.0.0.1:{port}/0")  # the API's own client
    usual, app.state.queue = app.state.queue, stand_in
    try:
        yield
    finally:
        app.state.queue = usual
        await stand_in.aclose()
        if hanging:
            server.close()


@pytest.fixture
def from_address(app, stripe_mock) -> Callable[[str], AsyncIterator[httpx.AsyncClient]]:
    @asynccontextmanager
    async def client_at(address: str) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http

    return client_at


@pytest.fixture
def password_checks(monkeypatch) -> list[str]:
    """The passwords bcrypt was asked to check."""
    checked: list[str] = []
    verify = user_service.verify_password

    async def counting(password, hashed, settings):  # type: ignore[no-untyped-def]
        checked.append(password)
        return await verify(password, hashed, settings)

    monkeypatch.setattr(user_service, "verify_password", counting)
    return checked


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/users/token/", json={"email": email, "password": password})


async def test_a_burst_of_guesses_cannot_exceed_the_limit(
    factory, limited, from_address, password_checks
):
    member = await factory.user()
    async with from_address("10.0.0.1") as guesser:
        answers = await asyncio.gather(
            *[login(guesser, member.email, f"guess-{n}") for n in range(40)]
        )
    assert Counter(r.status_code for r in answers) == {401: LIMIT, 429: 40 - LIMIT}
    assert len(password_checks) == LIMIT  # bcrypt ran only for the tries allowed
    assert all(r.json()["code"] == "rate_limited" for r in answers if r.status_code == 429)


async def test_a_burst_for_many_emails_from_one_address_is_limited_too(
    factory, limited, from_address, password_checks
):
    async with from_address("10.0.0.2") as guesser:
        answers = await asyncio.gather(
            *[login(guesser, f"nobody{n}@example.com", "guess") for n in range(30)]
        )
    assert Counter(r.status_code for r in answers) == {401: LIMIT, 429: 30 - LIMIT}
    assert len(password_checks) == LIMIT


async def test_guesses_from_many_addresses_do_not_lock_the_owner_out(
    factory, limited, from_address
):
    member = await factory.user(password="the-right-one")
    for n in range(LIMIT):
        async with from_address(f"10.1.0.{n}") as guesser:
            assert (await login(guesser, member.email, "wrong")).status_code == 401
    # The email has used up its tries: the addresses that failed for it are refused…
    async with from_address("10.1.0.0") as guesser:
        refused = await login(guesser, member.email, "the-right-one")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # …the owner, from an address of their own, gets in.
    async with from_address("192.168.7.7") as owner:
        assert (await login(owner, member.email, "the-right-one")).status_code == 200
        assert (await login(owner, member.email, "the-right-one")).status_code == 200
    # A new guessing address gets a single try.
    async with from_address("10.2.0.1") as newcomer:
        assert (await login(newcomer, member.email, "wrong")).status_code == 401
        assert (await login(newcomer, member.email, "wrong")).status_code == 429


async def test_a_burst_from_a_new_address_gets_one_try_once_the_email_is_over(
    factory, limited, from_address, password_checks
):
    member = await factory.user()
    for n in range(LIMIT):
        async with from_address(f"10.3.0.{n}") as guesser:
            await login(guesser, member.email, "wrong")
    password_checks.clear()
    async with from_address("10.4.0.1") as newcomer:
        answers = await asyncio.gather(*[login(newcomer, member.email, "x") for _ in range(20)])
    assert Counter(r.status_code for r in answers) == {401: 1, 429: 19}
    assert len(password_checks) == 1


async def test_right_passwords_give_their_try_back(factory, limited, from_address):
    member = await factory.user(password="the-right-one")
    async with from_address("10.5.0.1") as office:
        for _ in range(LIMIT * 3):
            assert (await login(office, member.email, "the-right-one")).status_code == 200
        for _ in range(LIMIT - 1):  # earlier successes took none of these
            assert (await login(office, member.email, "wrong")).status_code == 401
        assert (await login(office, member.email, "the-right-one")).status_code == 200


async def test_the_address_limit_is_its_own_higher_setting(
    factory, settings, monkeypatch, from_address, password_checks
):
    """A shared address (catalogue terminals, an office's NAT) gets more tries in all than
    any one email gets from it."""
    monkeypatch.setattr(settings, "LOGIN_RATE_LIMIT", 2)
    monkeypatch.setattr(settings, "LOGIN_RATE_LIMIT_PER_ADDRESS", 5)
    member = await factory.user(password="the-right-one")
    async with from_address("10.6.0.1") as terminal:
        mistyped = [await login(terminal, member.email, "wrong") for _ in range(3)]
        assert [r.status_code for r in mistyped] == [401, 401, 429]  # this email: 2
        others = [await login(terminal, f"reader{n}@example.com", "x") for n in range(4)]
        assert [r.status_code for r in others] == [401, 401, 401, 429]  # the address: 5
    assert len(password_checks) == 5


@pytest.mark.parametrize(
    ("tries_before", "hanging"), [(0, False), (3, False), (3, True)], ids=["0", "3", "3-hanging"]
)
async def test_with_redis_unreachable_each_process_still_holds_the_limit(
    app, factory, limited, from_address, password_checks, tries_before, hanging
):
    """Redis down, or timing out in the middle of a burst: the tries this process already
    counted and the burst's own stay within the limit, never unlimited."""
    member = await factory.user(password="the-right-one")
    async with from_address("10.7.0.1") as guesser:
        for _ in range(tries_before):  # counted in Redis, and by the process
            assert (await login(guesser, member.email, "wrong")).status_code == 401
        async with redis_unreachable(app, hanging=hanging):
            started = time.monotonic()
            answers = await asyncio.gather(
                *[login(guesser, member.email, f"guess-{n}") for n in range(40)]
            )
            took = time.monotonic() - started
    assert Counter(r.status_code for r in answers) == {
        401: LIMIT - tries_before,
        429: 40 - LIMIT + tries_before,
    }
    assert len(password_checks) == LIMIT
    # Not one after the other: each waited for Redis at most REDIS_WAIT_SECONDS (1 s), where
    # the client's 2 s timeouts, one connection set up at a time, took 80 s for the burst.
    assert took < 15, took
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


async def test_with_redis_unreachable_the_owner_still_gets_in(app, factory, limited, from_address):
    member = await factory.user(password="the-right-one")
    async with redis_unreachable(app):
        for n in range(LIMIT):
            async with from_address(f"10.8.0.{n}") as guesser:
                assert (await login(guesser, member.email, "wrong")).status_code == 401
        async with from_address("192.168.8.8") as owner:
            for _ in range(LIMIT + 1):  # a right password gives its try back here too
                assert (await login(owner, member.email, "the-right-one")).status_code == 200
        async with from_address("10.8.0.0") as guesser:
            assert (await login(guesser, member.email, "the-right-one")).status_code == 429


# -- a password change ends the older tokens ---------------------------------------------------


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
async def test_changing_the_password_ends_every_older_token(client, factory, method):
    member = await factory.user(email="reader@example.com", password="old-password")
    first = (await login(client, member.email, "old-password")).json()
    second = (await login(client, member.email, "old-password")).json()
    bearer = {"Authorization": f"Bearer {first['access']}"}
    body = {"password": "new-password"}
    if method == "PUT":
        body["email"] = member.email
    changed = await client.request(method, "/api/users/me/", json=body, headers=bearer)
    assert changed.status_code == 200, changed.text

    for pair in (first, second):
        old = await client.get(
            "/api/users/me/", headers={"Authorization": f"Bearer {pair['access']}"}
        )
        assert old.status_code == 401
        assert old.json()["code"] == "token_not_valid"
        refreshed = await client.post(
            "/api/users/token/refresh/", json={"refresh": pair["refresh"]}
        )
        assert refreshed.status_code == 401
    assert (await login(client, member.email, "old-password")).status_code == 401
    fresh = (await login(client, member.email, "new-password")).json()
    me = await client.get("/api/users/me/", headers={"Authorization": f"Bearer {fresh['access']}"})
    assert me.status_code == 200
    renewed = await client.post("/api/users/token/refresh/", json={"refresh": fresh["refresh"]})
    assert renewed.status_code == 200


async def test_changing_only_the_name_keeps_the_tokens(client, factory):
    member = await factory.user(password="a-password")
    pair = (await login(client, member.email, "a-password")).json()
    bearer = {"Authorization": f"Bearer {pair['access']}"}
    assert (
        await client.patch("/api/users/me/", json={"first_name": "Ann"}, headers=bearer)
    ).status_code == 200
    assert (await client.get("/api/users/me/", headers=bearer)).status_code == 200


# -- who the client is, behind a proxy or not ----------------------------------------------


@contextmanager
def served(settings) -> Iterator[str]:
    """The API served by uvicorn with the options `library-service run` gives it."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, configure_logs=False),
        host="127.0.0.1",
        port=port,
        lifespan="on",
        **{**server_options(settings), "log_config": None},
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)


@pytest.mark.parametrize(("trusted", "spoofable"), [("", False), ("127.0.0.1", True)])
async def test_forwarded_addresses_count_only_from_the_proxies_named(
    settings, limited, stripe_mock, trusted, spoofable
):
    """From loopback, X-Forwarded-For names the client only when FORWARDED_ALLOW_IPS says
    loopback is a proxy; otherwise claiming a new address each time gets a guesser nothing."""
    stripe_mock.route(host="127.0.0.1").pass_through()
    with served(settings.model_copy(update={"FORWARDED_ALLOW_IPS": trusted})) as url:
        async with httpx.AsyncClient(base_url=url) as guesser:
            answers = [
                await guesser.post(
                    "/api/users/token/",
                    json={"email": f"nobody{n}@example.com", "password": "guess"},
                    headers={"X-Forwarded-For": f"203.0.113.{n}"},
                )
                for n in range(LIMIT + 1)
            ]
    statuses = [answer.status_code for answer in answers]
    assert statuses == [401] * (LIMIT + 1) if spoofable else [401] * LIMIT + [429]
