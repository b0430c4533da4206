"""No input answers 500: JSON that Python parses but cannot echo back, money past what the
columns (and Stripe) can hold, tokens and Stripe events that are signed but malformed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from library_service.core import clock
from library_service.models import Book, Borrowing, Payment, User
from library_service.users.security import ALGORITHM

MONDAY = datetime(2026, 3, 2, 12, tzinfo=UTC)

# Python's json module parses these; RFC 8259 JSON has none of them, and none can be stored
# or echoed back in a 422 (JSON has no NaN, UTF-8 has no lone surrogate).
UNREPRESENTABLE = {
    "lone surrogate": '"\\ud800"',
    "lone low surrogate": '"x\\udc00y"',
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
    "float overflow": "1e400",
    "huge integer": "1" + "0" * 5000,
}


def _body(fields: dict[str, str], field: str, value: str) -> bytes:
    """A JSON object literal with `field` set to the raw JSON text `value`."""
    members = [f'"{name}": {value if name == field else raw}' for name, raw in fields.items()]
    return ("{" + ", ".join(members) + "}").encode()


USER = {"email": '"a@example.com"', "password": '"password123"', "first_name": '"A"'}
BOOK = {
    "title": '"T"',
    "author": '"A"',
    "cover": '"HARD"',
    "inventory": "1",
    "daily_fee": '"1.00"',
}
ENDPOINTS = [
    ("POST", "/api/users/", USER, None),
    ("POST", "/api/users/token/", {"email": '"a@example.com"', "password": '"x"'}, None),
    ("POST", "/api/users/token/refresh/", {"refresh": '"x"'}, None),
    ("PATCH", "/api/users/me/", {"first_name": '"A"'}, "member"),
    ("PUT", "/api/users/me/", {"email": '"m@example.com"', "first_name": '"A"'}, "member"),
    ("POST", "/api/books/", BOOK, "staff"),
    ("PATCH", "/api/books/{book}/", BOOK, "staff"),
    (
        "POST",
        "/api/borrowings/",
        {"book": "{book}", "expected_return_date": '"2030-01-01"'},
        "member",
    ),
]


@pytest.mark.parametrize("kind", list(UNREPRESENTABLE))
@pytest.mark.parametrize(("method", "path", "fields", "who"), ENDPOINTS)
async def test_unrepresentable_json_is_422_in_every_field(
    client, factory, db, method, path, fields, who, kind
):
    book = await factory.book()
    users = {"member": await factory.user(), "staff": await factory.user(is_staff=True)}
    headers = {"Content-Type": "application/json"}
    if who:
        headers.update(factory.auth(users[who]))
    fields = {name: raw.replace("{book}", str(book.id)) for name, raw in fields.items()}
    for field in fields:
        content = _body(fields, field, UNREPRESENTABLE[kind])
        response = await client.request(
            method, path.format(book=book.id), content=content, headers=headers
        )
        assert response.status_code == 422, (field, response.status_code, response.text)
        detail = response.json()["detail"]
        assert detail[0]["type"] == "json_invalid", detail
    async with db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Borrowing)) == 0
        assert await session.scalar(select(func.count()).select_from(User)) == 2


# -- money ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fee", "status"), [("1000.00", 201), ("1000.01", 422), ("99999999.99", 422)]
)
async def test_daily_fee_has_a_maximum(client, factory, fee, status):
    staff = await factory.user(is_staff=True)
    body = {"title": "T", "author": "A", "cover": "HARD", "inventory": 1, "daily_fee": fee}
    response = await client.post("/api/books/", json=body, headers=factory.auth(staff))
    assert response.status_code == status, response.text


async def test_a_loan_dearer_than_stripe_can_charge_is_refused(client, factory, db, sandbox):
    """A book stored before the fee had a maximum: its loan cannot be charged, so it is
    refused with a reason instead of failing on the amount column."""
    member = await factory.user()
    book = await factory.book(daily_fee=Decimal("99999999.99"), inventory=2)
    with clock.frozen(MONDAY):
        response = await client.post(
            "/api/borrowings/",
            json={"book": book.id, "expected_return_date": str(MONDAY.date() + timedelta(days=2))},
            headers=factory.auth(member),
        )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "amount_too_large"
    async with db.sessionmaker() as session:
        assert (await session.get(Book, book.id)).inventory == 2
        assert await session.scalar(select(func.count()).select_from(Borrowing)) == 0
    assert sandbox.sessions == {}


@pytest.mark.parametrize("who", ["member", "staff"])
async def test_a_huge_fine_never_blocks_the_return(client, factory, db, who):
    member = await factory.user()
    staff = await factory.user(is_staff=True)
    book = await factory.book(daily_fee=Decimal("99999999.99"), inventory=0)
    async with db.sessionmaker() as session, session.begin():
        borrowing = Borrowing(
            book_id=book.id,
            user_id=member.id,
            borrow_date=MONDAY.date() - timedelta(days=400),
            expected_return_date=MONDAY.date() - timedelta(days=390),
        )
        session.add(borrowing)
    with clock.frozen(MONDAY):
        response = await client.post(
            f"/api/borrowings/{borrowing.id}/return/",
            headers=factory.auth(member if who == "member" else staff),
        )
    assert response.status_code == 200, response.text
    fine = next(p for p in response.json()["payments"] if p["type"] == "FINE")
    assert fine["money_to_pay"] == "999999.99"  # the most one Stripe Checkout charge can be
    async with db.sessionmaker() as session:
        assert (await session.get(Book, book.id)).inventory == 1
        stored = await session.scalar(select(Payment.money_to_pay).where(Payment.type == "FINE"))
    assert stored == Decimal("999999.99")


# -- tokens -------------------------------------------------------------------------------------


@pytest.mark.parametrize("sub", [str(2**31), str(2**63), "9" * 5000, "-1", "0", "1e3", "٣"])
async def test_signed_token_with_a_subject_no_user_can_have_is_401(client, settings, sub):
    from jose import jwt

    now = int(clock.now().timestamp())
    claims = {"sub": sub, "type": "access", "iat": now, "exp": now + 600, "ver": 0}
    token = jwt.encode(claims, settings.SECRET_KEY, algorithm=ALGORITHM)
    response = await client.get("/api/users/me/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "token_not_valid"


def _signed_access_token(settings, **claims: object) -> str:
    from jose import jwt

    now = int(clock.now().timestamp())
    base = {"sub": "1", "type": "access", "iat": now, "exp": now + 600, "ver": 0}
    return str(jwt.encode({**base, **claims}, settings.SECRET_KEY, algorithm=ALGORITHM))


@pytest.mark.parametrize(
    "claims",
    [
        {"ver": 2**31},
        {"ver": 2**63},
        {"ver": -1},
        {"ver": -(2**31) - 1},
        {"ver": True},
        {"ver": "0"},
        {"ver": 0.0},
        {"ver": None},
        {"exp": True},
        {"type": ["access"]},
    ],
    ids=repr,
)
async def test_signed_token_with_a_claim_out_of_range_is_401(client, factory, settings, claims):
    """Signed with the key, so only the claims' own checks stand between them and SQL."""
    member = await factory.user()
    token = _signed_access_token(settings, **{"sub": str(member.id), **claims})
    response = await client.get("/api/users/me/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "token_not_valid"


@pytest.mark.parametrize("claims", [{"exp": 10**30}, {"iat": 2**64}, {"ver": 0}], ids=repr)
async def test_signed_token_with_far_future_times_still_names_its_user(
    client, factory, settings, claims
):
    member = await factory.user()
    token = _signed_access_token(settings, **{"sub": str(member.id), **claims})
    response = await client.get("/api/users/me/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.json()["id"] == member.id


# -- Stripe events ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"{}",
        b'{"type": "checkout.session.completed", "data": {"object": {"id": "cs_1"}}}',
        b'{"id": "evt_1", "type": "checkout.session.completed", "data": null}',
        b'{"id": "evt_1", "type": "checkout.session.completed", "data": {"object": null}}',
        b'{"id": "evt_1", "type": "checkout.session.expired", "data": {"object": {"id": 5}}}',
        b"[]",
        b'"evt"',
        b'{"id": "' + b"e" * 300 + b'", "type": "checkout.session.expired", "data": {}}',
        b'{"id": 12345, "type": "checkout.session.expired", "data": {"object": {"id": "cs"}}}',
        b'{"id": "evt_2", "type": "checkout.session.expired", '
        b'"data": {"object": {"id": "cs\\u0000x"}}}',
        b'{"id": "evt_3", "type": "checkout.session.expired", '
        b'"data": {"object": {"id": "\\ud800"}}}',
        b'{"id": "evt_4", "type": "checkout.session.expired", "data": {"object": {"id": NaN}}}',
    ],
)
async def test_signed_but_malformed_stripe_events_are_400(client, db, sandbox, payload):
    from stripe import WebhookSignature

    header = WebhookSignature.generate_signature_header(payload.decode(), sandbox.webhook_secret)
    response = await client.post(
        "/api/payments/webhook/",
        content=payload,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_event"
    async with db.sessionmaker() as session:
        assert await session.scalar(text("SELECT count(*) FROM stripe_events")) == 0


async def test_an_unexpected_error_answers_json_500_with_the_request_id(
    client, factory, monkeypatch
):
    from library_service.books.service import BookService

    async def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")

    monkeypatch.setattr(BookService, "list_books", broken)
    response = await client.get("/api/books/", headers={"X-Request-ID": "trace-me"})
    assert response.status_code == 500
    assert response.json() == {
        "detail": "Something went wrong on our side; it has been logged.",
        "code": "internal_error",
        "request_id": "trace-me",
    }
    assert response.headers["x-request-id"] == "trace-me"
    assert (await client.get("/health")).status_code == 200


def test_after_an_unexpected_error_the_connection_serves_the_next_request(settings, monkeypatch):
    """Over a real keep-alive connection: the 500 is JSON, and the same socket answers the
    next request (a server-side traceback would close it)."""
    import http.client
    import json

    from library_service.books.service import BookService
    from library_service.dev.embedded import free_port
    from library_service.dev.local import serve_in_thread
    from library_service.main import create_app

    async def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")

    monkeypatch.setattr(BookService, "list_books", broken)
    port = free_port()
    stop = serve_in_thread(
        create_app(settings, configure_logs=False), port, name="bug", lifespan="on"
    )
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/api/books/")
        failed = connection.getresponse()
        body = json.loads(failed.read())
        assert failed.status == 500
        assert body["code"] == "internal_error"
        assert body["request_id"] == failed.getheader("x-request-id")
        socket_before = connection.sock
        connection.request("GET", "/health")
        healthy = connection.getresponse()
        assert healthy.status == 200
        assert json.loads(healthy.read()) == {"status": "ok"}
        assert connection.sock is socket_before  # the same connection
        connection.close()
    finally:
        stop()


@pytest.mark.parametrize("path", ["/api/audit/", "/api/payments/totals/"])
@pytest.mark.parametrize(
    "dates",
    [
        {"until": "9999-12-31"},  # no day after it
        {"since": "9999-12-31", "until": "9999-12-31"},
        {"since": "0001-01-01", "until": "0001-01-01"},  # its start is before UTC's year 1 east
    ],
)
async def test_reports_take_the_calendars_first_and_last_days(client, factory, path, dates):
    response = await client.get(path, params=dates, headers=factory.auth(await factory.staff()))
    assert response.status_code == 200, response.text
