"""Payments: Stripe Checkout through the sandbox, redirects, webhooks, expiry, renewal, outages.

The real `stripe` SDK talks to the sandbox Stripe over respx, so what is asserted about the
requests is what Stripe itself would have received.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
import stripe
from sqlalchemy import func, select, text

from library_service.core import clock
from library_service.core.money import as_integer_cents, chargeable, to_cents
from library_service.dev.fake_stripe import SandboxStripe
from library_service.models import Book, Borrowing, Payment
from library_service.payments import tasks

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
DAY0 = T0.date()
CREATE_PATH = "/v1/checkout/sessions"
PLACEHOLDER = "session_id={CHECKOUT_SESSION_ID}"


# -- helpers ------------------------------------------------------------------------------


def on_day(days: int) -> Any:
    """Freeze the library clock `days` after T0 (noon UTC)."""
    return clock.frozen(T0 + timedelta(days=days))


def app_path(url: str) -> str:
    """Path and query of an absolute URL, for the ASGI `client`."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def query_param(url: str, name: str) -> str:
    values = parse_qs(urlsplit(url).query)[name]
    assert len(values) == 1
    return values[0]


async def borrow(
    client: httpx.AsyncClient, factory: Any, user: Any, book: Book, *, days: int = 4
) -> httpx.Response:
    with on_day(0):
        return await client.post(
            "/api/borrowings/",
            json={"book": book.id, "expected_return_date": str(DAY0 + timedelta(days=days))},
            headers=factory.auth(user),
        )


async def borrow_ok(
    client: httpx.AsyncClient, factory: Any, user: Any, book: Book, *, days: int = 4
) -> dict[str, Any]:
    response = await borrow(client, factory, user, book, days=days)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def return_on(
    client: httpx.AsyncClient, factory: Any, user: Any, borrowing_id: int, *, day: int
) -> httpx.Response:
    with on_day(day):
        return await client.post(
            f"/api/borrowings/{borrowing_id}/return/", headers=factory.auth(user)
        )


def the_payment(borrowing: dict[str, Any], kind: str = "PAYMENT") -> dict[str, Any]:
    found = [p for p in borrowing["payments"] if p["type"] == kind]
    assert len(found) == 1, borrowing["payments"]
    return found[0]


async def pay(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, session_url: str
) -> httpx.Response:
    """Press Pay on the sandbox page and follow the redirect back to the app."""
    redirect = await browser.post(session_url + "/pay")
    assert redirect.status_code == 303, redirect.text
    return await client.get(app_path(redirect.headers["location"]))


async def payment_row(db: Any, payment_id: int) -> Payment:
    async with db.sessionmaker() as session:
        payment = await session.get(Payment, payment_id)
        assert payment is not None
        return payment


async def count(db: Any, sql: str, **params: Any) -> int:
    async with db.sessionmaker() as session:
        return int(await session.scalar(text(sql), params) or 0)


async def paid_notifications(db: Any) -> int:
    return await count(db, "SELECT count(*) FROM notifications WHERE kind = 'payment_paid'")


async def book_inventory(db: Any, book_id: int) -> int:
    async with db.sessionmaker() as session:
        book = await session.get(Book, book_id)
        assert book is not None
        return book.inventory


def creates(sandbox: SandboxStripe) -> list[dict[str, Any]]:
    return [
        params
        for method, path, params in sandbox.requests
        if (method, path)
        == (
            "POST",
            CREATE_PATH,
        )
    ]


def task_ctx(app: Any, db: Any, settings: Any) -> dict[str, Any]:
    return {"db": db, "stripe": app.state.stripe, "settings": settings, "redis": app.state.queue}


def stripe_500(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        500, json={"error": {"type": "api_error", "message": "Something went wrong."}}
    )


OUTAGES = [
    pytest.param(httpx.ConnectTimeout, id="connect-timeout"),
    pytest.param(httpx.ConnectError, id="connect-error"),
    pytest.param(stripe_500, id="http-500"),
]


class StripeDown:
    """Make the Stripe API fail until the block ends (the hosted pages keep working)."""

    def __init__(self, router: respx.MockRouter, effect: Any = httpx.ConnectTimeout) -> None:
        self.route = router.routes["stripe"]
        self.effect = effect

    def __enter__(self) -> None:
        self.original = self.route.side_effect
        self.route.side_effect = self.effect

    def __exit__(self, *exc: object) -> None:
        self.route.side_effect = self.original


async def post_event(client: httpx.AsyncClient, payload: bytes, header: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Stripe-Signature"] = header
    return await client.post("/api/payments/webhook/", content=payload, headers=headers)


# -- the full flow through the sandbox ------------------------------------------------------


async def test_borrow_pay_in_sandbox_and_success_redirect(client, browser, factory, db, sandbox):
    member = await factory.user()
    book = await factory.book(title="The Dispossessed", inventory=2, daily_fee=Decimal("1.50"))
    borrowing = await borrow_ok(client, factory, member, book, days=4)
    payment = the_payment(borrowing)
    assert payment["status"] == "PENDING"
    assert payment["money_to_pay"] == "6.00"
    session_id = payment["session_id"]
    assert session_id and session_id in sandbox.sessions
    assert payment["session_url"] == sandbox.sessions[session_id]["url"]

    page = await browser.get(payment["session_url"])
    assert page.status_code == 200
    assert "The Dispossessed" in page.text
    assert "$6.00" in page.text
    assert ">Pay $6.00</button>" in page.text
    assert ">Cancel</button>" in page.text
    assert f'action="/c/pay/{session_id}/pay"' in page.text
    assert f'action="/c/pay/{session_id}/cancel"' in page.text

    redirect = await browser.post(payment["session_url"] + "/pay")
    assert redirect.status_code == 303
    location = redirect.headers["location"]
    assert urlsplit(location).path == "/api/payments/success/"
    assert query_param(location, "session_id") == session_id
    assert "{CHECKOUT_SESSION_ID}" not in location

    assert (await payment_row(db, payment["id"])).status == "PENDING"  # not yet told
    response = await client.get(app_path(location))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["detail"]
    assert body["payment"]["id"] == payment["id"]
    assert body["payment"]["status"] == "PAID"
    assert body["payment"]["money_to_pay"] == "6.00"
    row = await payment_row(db, payment["id"])
    assert row.status == "PAID"
    assert row.paid_at is not None
    assert await paid_notifications(db) == 1

    # The browser comes back again (reload, back button): harmless.
    again = await client.get(app_path(location))
    assert again.status_code == 200, again.text
    assert again.json()["payment"]["status"] == "PAID"
    assert (await payment_row(db, payment["id"])).status == "PAID"
    assert await paid_notifications(db) == 1

    # The borrowing shows the payment as paid.
    detail = await client.get(f"/api/borrowings/{borrowing['id']}/", headers=factory.auth(member))
    assert detail.status_code == 200
    assert the_payment(detail.json())["status"] == "PAID"


async def test_success_without_trailing_slash_works(client, browser, factory, db):
    member = await factory.user()
    book = await factory.book()
    payment = the_payment(await borrow_ok(client, factory, member, book))
    await browser.post(payment["session_url"] + "/pay")
    response = await client.get(
        "/api/payments/success", params={"session_id": payment["session_id"]}
    )
    assert response.status_code == 200, response.text
    assert (await payment_row(db, payment["id"])).status == "PAID"


async def test_cancel_redirect_says_pay_later_and_keeps_payment_pending(
    client, browser, factory, db, sandbox
):
    member = await factory.user()
    book = await factory.book()
    payment = the_payment(await borrow_ok(client, factory, member, book))
    session_id = payment["session_id"]

    redirect = await browser.post(payment["session_url"] + "/cancel")
    assert redirect.status_code == 303
    location = redirect.headers["location"]
    assert urlsplit(location).path == "/api/payments/cancel/"
    assert query_param(location, "session_id") == session_id

    response = await client.get(app_path(location))
    assert response.status_code == 200, response.text
    body = response.json()
    assert "later" in body["detail"].lower()
    assert body["payment"]["id"] == payment["id"]
    assert body["payment"]["status"] == "PENDING"
    assert body["payment"]["session_url"] == payment["session_url"]
    assert body["expires_at"] is not None
    row = await payment_row(db, payment["id"])
    assert row.status == "PENDING"
    assert row.session_id == session_id
    assert sandbox.sessions[session_id]["status"] == "open"
    assert await paid_notifications(db) == 0

    # ... and it can indeed be paid later with the same link.
    paid = await pay(client, browser, payment["session_url"])
    assert paid.status_code == 200, paid.text
    assert (await payment_row(db, payment["id"])).status == "PAID"


async def test_success_for_unpaid_session_is_refused(client, factory, db):
    member = await factory.user()
    book = await factory.book()
    payment = the_payment(await borrow_ok(client, factory, member, book))
    response = await client.get(
        "/api/payments/success/", params={"session_id": payment["session_id"]}
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "payment_not_completed"
    assert response.json()["detail"]
    row = await payment_row(db, payment["id"])
    assert row.status == "PENDING"
    assert row.paid_at is None
    assert await paid_notifications(db) == 0


async def test_success_for_expired_unpaid_session_is_refused(client, factory, db, sandbox):
    member = await factory.user()
    book = await factory.book()
    payment = the_payment(await borrow_ok(client, factory, member, book))
    sandbox.mark_expired(payment["session_id"])
    response = await client.get(
        "/api/payments/success/", params={"session_id": payment["session_id"]}
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "payment_not_completed"
    assert (await payment_row(db, payment["id"])).status != "PAID"


@pytest.mark.parametrize("route", ["success", "cancel"])
async def test_redirect_with_unknown_session_is_404(client, factory, route):
    member = await factory.user()
    book = await factory.book()
    await borrow_ok(client, factory, member, book)
    response = await client.get(f"/api/payments/{route}/", params={"session_id": "cs_test_nope"})
    assert response.status_code == 404, response.text
    assert response.json()["code"]
    assert response.json()["detail"]


@pytest.mark.parametrize("route", ["success", "cancel"])
async def test_redirect_without_session_id_is_422(client, route):
    response = await client.get(f"/api/payments/{route}/")
    assert response.status_code == 422


async def test_success_with_stripe_down_is_503_and_changes_nothing(
    client, browser, factory, db, stripe_mock
):
    member = await factory.user()
    book = await factory.book()
    payment = the_payment(await borrow_ok(client, factory, member, book))
    redirect = await browser.post(payment["session_url"] + "/pay")
    with StripeDown(stripe_mock):
        response = await client.get(app_path(redirect.headers["location"]))
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "payment_provider_unavailable"
    assert (await payment_row(db, payment["id"])).status == "PENDING"
    # Once Stripe answers again, the same redirect completes it.
    response = await client.get(app_path(redirect.headers["location"]))
    assert response.status_code == 200, response.text
    assert (await payment_row(db, payment["id"])).status == "PAID"


# -- what the SDK sent to Stripe ---------------------------------------------------------------


async def test_checkout_session_request_sent_to_stripe(client, factory, sandbox, stripe_mock):
    member = await factory.user()
    book = await factory.book(title="The Left Hand of Darkness", daily_fee=Decimal("1.50"))
    payment = the_payment(await borrow_ok(client, factory, member, book, days=4))

    sent = creates(sandbox)
    assert len(sent) == 1
    params = sent[0]
    assert params["mode"] == "payment"
    assert len(params["line_items"]) == 1
    item = params["line_items"][0]
    assert item["quantity"] == "1"
    assert item["price_data"]["currency"] == "usd"
    assert item["price_data"]["unit_amount"] == "600"
    assert "The Left Hand of Darkness" in item["price_data"]["product_data"]["name"]
    assert params["success_url"].startswith("http://testserver/api/payments/success/")
    assert params["cancel_url"].startswith("http://testserver/api/payments/cancel/")
    assert PLACEHOLDER in params["success_url"]
    assert PLACEHOLDER in params["cancel_url"]
    assert params["metadata"]["payment_id"] == str(payment["id"])

    stored = sandbox.sessions[payment["session_id"]]
    assert stored["amount_total"] == 600
    assert stored["currency"] == "usd"
    assert stored["metadata"] == {"payment_id": str(payment["id"])}

    posts = [
        call.request
        for call in stripe_mock.routes["stripe"].calls
        if call.request.method == "POST" and call.request.url.path == CREATE_PATH
    ]
    assert len(posts) == 1
    assert posts[0].headers.get("Idempotency-Key")
    assert posts[0].headers["Authorization"] == "Bearer sk_test_suite"


async def test_fine_checkout_session_request_sent_to_stripe(
    client, browser, factory, sandbox, stripe_mock
):
    member = await factory.user()
    book = await factory.book(title="Solaris", daily_fee=Decimal("1.50"))
    borrowing = await borrow_ok(client, factory, member, book, days=4)
    response = await return_on(client, factory, member, borrowing["id"], day=8)
    assert response.status_code == 200, response.text
    fine = the_payment(response.json(), "FINE")
    assert fine["money_to_pay"] == "12.00"  # 4 days late * 1.50 * 2

    sent = creates(sandbox)
    assert len(sent) == 2
    params = sent[1]
    item = params["line_items"][0]
    assert params["mode"] == "payment"
    assert item["quantity"] == "1"
    assert item["price_data"]["currency"] == "usd"
    assert item["price_data"]["unit_amount"] == "1200"
    assert "Solaris" in item["price_data"]["product_data"]["name"]
    assert PLACEHOLDER in params["success_url"]
    assert PLACEHOLDER in params["cancel_url"]
    assert params["metadata"]["payment_id"] == str(fine["id"])

    keys = [
        call.request.headers.get("Idempotency-Key")
        for call in stripe_mock.routes["stripe"].calls
        if call.request.method == "POST" and call.request.url.path == CREATE_PATH
    ]
    assert len(keys) == 2
    assert all(keys)
    assert keys[0] != keys[1]

    # The fine's page shows it, and paying it works.
    page = await browser.get(fine["session_url"])
    assert page.status_code == 200
    assert "Solaris" in page.text
    assert "$12.00" in page.text


def test_money_rounds_half_up_to_cents():
    assert to_cents(Decimal("0.125")) == Decimal("0.13")  # banker's rounding would give 0.12
    assert to_cents(Decimal("2.345")) == Decimal("2.35")
    assert to_cents(Decimal("2.3449")) == Decimal("2.34")
    assert as_integer_cents(Decimal("6")) == 600
    assert as_integer_cents(Decimal("19.995")) == 2000
    assert chargeable(Decimal("0.10")) == Decimal("0.50")
    assert chargeable(Decimal("0.50")) == Decimal("0.50")
    assert chargeable(Decimal("0.505")) == Decimal("0.51")


# -- Stripe's USD minimum ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fee", "days", "stored", "cents"),
    [
        ("0.10", 1, "0.50", "50"),
        ("0.12", 4, "0.50", "50"),
        ("0.10", 5, "0.50", "50"),
        ("0.10", 6, "0.60", "60"),
    ],
)
async def test_small_borrowing_fee_is_charged_at_least_50_cents(
    client, factory, db, sandbox, fee, days, stored, cents
):
    member = await factory.user()
    book = await factory.book(daily_fee=Decimal(fee))
    payment = the_payment(await borrow_ok(client, factory, member, book, days=days))
    assert payment["money_to_pay"] == stored
    assert (await payment_row(db, payment["id"])).money_to_pay == Decimal(stored)
    assert creates(sandbox)[0]["line_items"][0]["price_data"]["unit_amount"] == cents
    assert sandbox.sessions[payment["session_id"]]["amount_total"] == int(cents)


async def test_small_fine_is_charged_at_least_50_cents(client, factory, db, sandbox):
    member = await factory.user()
    book = await factory.book(daily_fee=Decimal("0.10"))
    borrowing = await borrow_ok(client, factory, member, book, days=1)
    response = await return_on(client, factory, member, borrowing["id"], day=2)  # 1 day late
    assert response.status_code == 200, response.text
    fine = the_payment(response.json(), "FINE")
    assert fine["money_to_pay"] == "0.50"  # 1 * 0.10 * 2 = 0.20, lifted
    assert (await payment_row(db, fine["id"])).money_to_pay == Decimal("0.50")
    assert fine["session_id"]
    assert creates(sandbox)[-1]["line_items"][0]["price_data"]["unit_amount"] == "50"


# -- webhooks ----------------------------------------------------------------------------------


async def borrowed_payment(client: httpx.AsyncClient, factory: Any) -> dict[str, Any]:
    member = await factory.user()
    book = await factory.book()
    return the_payment(await borrow_ok(client, factory, member, book))


@pytest.mark.parametrize(
    "event_type", ["checkout.session.completed", "checkout.session.async_payment_succeeded"]
)
async def test_webhook_paid_events_mark_paid(client, factory, db, sandbox, event_type):
    payment = await borrowed_payment(client, factory)
    payload, header = sandbox.signed_event(event_type, sandbox.mark_paid(payment["session_id"]))
    response = await post_event(client, payload, header)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "handled": True}
    row = await payment_row(db, payment["id"])
    assert row.status == "PAID"
    assert row.paid_at is not None
    assert await paid_notifications(db) == 1
    event_id = json.loads(payload)["id"]
    assert await count(db, "SELECT count(*) FROM stripe_events WHERE id = :id", id=event_id) == 1


async def test_webhook_expired_event_marks_expired(client, factory, db, sandbox):
    payment = await borrowed_payment(client, factory)
    payload, header = sandbox.signed_event(
        "checkout.session.expired", sandbox.mark_expired(payment["session_id"])
    )
    response = await post_event(client, payload, header)
    assert response.status_code == 200, response.text
    assert response.json()["handled"] is True
    assert (await payment_row(db, payment["id"])).status == "EXPIRED"
    assert await paid_notifications(db) == 0


async def test_webhook_without_trailing_slash(client, factory, db, sandbox):
    payment = await borrowed_payment(client, factory)
    payload, header = sandbox.signed_event(
        "checkout.session.completed", sandbox.mark_paid(payment["session_id"])
    )
    response = await client.post(
        "/api/payments/webhook",
        content=payload,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert (await payment_row(db, payment["id"])).status == "PAID"


async def test_webhook_same_event_twice_applies_once(client, factory, db, sandbox):
    payment = await borrowed_payment(client, factory)
    payload, header = sandbox.signed_event(
        "checkout.session.completed", sandbox.mark_paid(payment["session_id"])
    )
    first = await post_event(client, payload, header)
    second = await post_event(client, payload, header)
    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    assert first.json()["handled"] is True
    assert second.json()["handled"] is False
    assert (await payment_row(db, payment["id"])).status == "PAID"
    assert await count(db, "SELECT count(*) FROM stripe_events") == 1
    assert await paid_notifications(db) == 1


async def test_webhook_redelivered_expiry_does_not_undo_a_renewal(client, factory, db, sandbox):
    """An old expiry event delivered again after the payment was renewed changes nothing."""
    member = await factory.user()
    book = await factory.book()
    payment = the_payment(await borrow_ok(client, factory, member, book))
    payload, header = sandbox.signed_event(
        "checkout.session.expired", sandbox.mark_expired(payment["session_id"])
    )
    assert (await post_event(client, payload, header)).status_code == 200
    renewed = await client.post(
        f"/api/payments/{payment['id']}/renew/", headers=factory.auth(member)
    )
    assert renewed.status_code == 200, renewed.text
    again = await post_event(client, payload, header)
    assert again.status_code == 200
    assert again.json()["handled"] is False
    row = await payment_row(db, payment["id"])
    assert row.status == "PENDING"
    assert row.session_id == renewed.json()["session_id"]
    assert await count(db, "SELECT count(*) FROM stripe_events") == 1


async def test_webhook_event_is_never_applied_twice(client, factory, db, sandbox):
    """Idempotent per event id: a redelivered event is not applied again, even when the
    payment's state would let it apply (here: put back to PENDING behind the app's back)."""
    payment = await borrowed_payment(client, factory)
    payload, header = sandbox.signed_event(
        "checkout.session.expired", sandbox.mark_expired(payment["session_id"])
    )
    assert (await post_event(client, payload, header)).json()["handled"] is True
    assert (await payment_row(db, payment["id"])).status == "EXPIRED"
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            text("UPDATE payments SET status = 'PENDING' WHERE id = :id"), {"id": payment["id"]}
        )
    again = await post_event(client, payload, header)
    assert again.status_code == 200, again.text
    assert again.json()["handled"] is False
    assert (await payment_row(db, payment["id"])).status == "PENDING"
    assert await count(db, "SELECT count(*) FROM stripe_events") == 1


async def test_webhook_paid_after_success_redirect_is_harmless(
    client, browser, factory, db, sandbox
):
    payment = await borrowed_payment(client, factory)
    assert (await pay(client, browser, payment["session_url"])).status_code == 200
    payload, header = sandbox.signed_event(
        "checkout.session.completed", sandbox.sessions[payment["session_id"]]
    )
    response = await post_event(client, payload, header)
    assert response.status_code == 200, response.text
    assert response.json()["handled"] is False
    assert (await payment_row(db, payment["id"])).status == "PAID"
    assert await paid_notifications(db) == 1


async def test_webhook_expired_event_never_unpays(client, browser, factory, db, sandbox):
    payment = await borrowed_payment(client, factory)
    paid = await pay(client, browser, payment["session_url"])
    assert paid.status_code == 200, paid.text
    session = dict(sandbox.sessions[payment["session_id"]], status="expired")
    payload, header = sandbox.signed_event("checkout.session.expired", session)
    response = await post_event(client, payload, header)
    assert response.status_code == 200, response.text
    assert (await payment_row(db, payment["id"])).status == "PAID"


async def _signature_cases(sandbox: SandboxStripe, session: dict[str, Any]) -> dict[str, Any]:
    payload, header = sandbox.signed_event("checkout.session.completed", session)
    tampered = payload.replace(b'"checkout.session.completed"', b'"checkout.session.expired"')
    assert tampered != payload
    foreign = stripe.WebhookSignature.generate_signature_header(
        payload.decode(), "whsec_someone_else"
    )
    stale = stripe.WebhookSignature.generate_signature_header(
        payload.decode(),
        sandbox.webhook_secret,
        timestamp=int(datetime.now(UTC).timestamp()) - 3600,
    )
    return {
        "wrong-secret": (payload, foreign),
        "missing-header": (payload, None),
        "garbage-header": (payload, "not-a-signature"),
        "empty-header": (payload, ""),
        "tampered-body": (tampered, header),
        "stale-timestamp": (payload, stale),
    }


@pytest.mark.parametrize(
    "case",
    [
        "wrong-secret",
        "missing-header",
        "garbage-header",
        "empty-header",
        "tampered-body",
        "stale-timestamp",
    ],
)
async def test_webhook_bad_signature_is_400_and_changes_nothing(client, factory, db, sandbox, case):
    payment = await borrowed_payment(client, factory)
    session = sandbox.mark_paid(payment["session_id"])
    payload, header = (await _signature_cases(sandbox, session))[case]
    response = await post_event(client, payload, header)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_signature"
    assert response.json()["detail"]
    assert (await payment_row(db, payment["id"])).status == "PENDING"
    assert await count(db, "SELECT count(*) FROM stripe_events") == 0
    assert await paid_notifications(db) == 0


async def test_webhook_signed_garbage_is_400_not_500(client, settings):
    payload = "this is not json"
    header = stripe.WebhookSignature.generate_signature_header(
        payload, settings.STRIPE_WEBHOOK_SECRET
    )
    response = await post_event(client, payload.encode(), header)
    assert response.status_code == 400, response.text
    assert response.json()["code"]


async def test_webhook_unknown_event_type_is_accepted_and_ignored(client, factory, db, sandbox):
    payment = await borrowed_payment(client, factory)
    session = sandbox.mark_paid(payment["session_id"])
    payload, header = sandbox.signed_event("payment_intent.created", session)
    response = await post_event(client, payload, header)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "handled": False}
    row = await payment_row(db, payment["id"])
    assert row.status == "PENDING"
    assert await paid_notifications(db) == 0


async def test_webhook_own_signed_event_for_unknown_session_is_ignored(
    client, factory, db, settings
):
    payment = await borrowed_payment(client, factory)
    event = {
        "id": "evt_handmade_1",
        "object": "event",
        "type": "checkout.session.completed",
        "created": int(datetime.now(UTC).timestamp()),
        "livemode": False,
        "data": {
            "object": {
                "id": "cs_test_someone_elses",
                "object": "checkout.session",
                "status": "complete",
                "payment_status": "paid",
            }
        },
    }
    payload = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(
        payload, settings.STRIPE_WEBHOOK_SECRET
    )
    response = await post_event(client, payload.encode(), header)
    assert response.status_code == 200, response.text
    assert response.json()["handled"] is False
    assert (await payment_row(db, payment["id"])).status == "PENDING"
    assert await paid_notifications(db) == 0


async def test_webhook_completed_but_unpaid_does_not_mark_paid(client, factory, db, sandbox):
    """checkout.session.completed with payment_status unpaid (a delayed payment method):
    the money has not arrived yet."""
    payment = await borrowed_payment(client, factory)
    session = dict(sandbox.sessions[payment["session_id"]], status="complete")
    assert session["payment_status"] == "unpaid"
    payload, header = sandbox.signed_event("checkout.session.completed", session)
    response = await post_event(client, payload, header)
    assert response.status_code == 200, response.text
    assert (await payment_row(db, payment["id"])).status == "PENDING"
    assert await paid_notifications(db) == 0


async def test_sandbox_delivers_signed_webhook_on_pay(
    client, browser, app, factory, db, sandbox, stripe_mock
):
    """With a webhook URL the sandbox notifies the app itself: PAID without the redirect."""
    stripe_mock.route(host="testserver", name="app").mock(side_effect=respx.ASGIHandler(app))
    payment = await borrowed_payment(client, factory)
    previous = sandbox.webhook_url
    sandbox.webhook_url = "http://testserver/api/payments/webhook/"
    try:
        redirect = await browser.post(payment["session_url"] + "/pay")
    finally:
        sandbox.webhook_url = previous
    assert redirect.status_code == 303
    assert stripe_mock.routes["app"].call_count == 1
    row = await payment_row(db, payment["id"])
    assert row.status == "PAID"
    assert await count(db, "SELECT count(*) FROM stripe_events") == 1
    assert await paid_notifications(db) == 1
    # The redirect that follows is still fine.
    response = await client.get(app_path(redirect.headers["location"]))
    assert response.status_code == 200, response.text
    assert await paid_notifications(db) == 1


# -- expiry poll and renewal -------------------------------------------------------------------


async def test_poll_marks_expired_session_expired(client, app, factory, db, settings, sandbox):
    payment = await borrowed_payment(client, factory)
    sandbox.mark_expired(payment["session_id"])
    outcome = await tasks.poll_expired_sessions(task_ctx(app, db, settings))
    assert outcome["EXPIRED"] == 1
    assert outcome["PAID"] == 0
    row = await payment_row(db, payment["id"])
    assert row.status == "EXPIRED"
    assert row.session_id == payment["session_id"]
    # Safe to run again.
    outcome = await tasks.poll_expired_sessions(task_ctx(app, db, settings))
    assert outcome["EXPIRED"] == 0
    assert (await payment_row(db, payment["id"])).status == "EXPIRED"


async def test_poll_marks_paid_session_paid(client, app, factory, db, settings, sandbox):
    payment = await borrowed_payment(client, factory)
    sandbox.mark_paid(payment["session_id"])  # paid, but neither redirect nor webhook came
    outcome = await tasks.poll_expired_sessions(task_ctx(app, db, settings))
    assert outcome["PAID"] == 1
    assert (await payment_row(db, payment["id"])).status == "PAID"
    assert await paid_notifications(db) == 1
    await tasks.poll_expired_sessions(task_ctx(app, db, settings))
    assert await paid_notifications(db) == 1


async def test_poll_leaves_open_sessions_alone(client, app, factory, db, settings, sandbox):
    payment = await borrowed_payment(client, factory)
    outcome = await tasks.poll_expired_sessions(task_ctx(app, db, settings))
    assert outcome["open"] == 1
    assert outcome["EXPIRED"] == outcome["PAID"] == 0
    assert (await payment_row(db, payment["id"])).status == "PENDING"


async def test_poll_with_stripe_down_changes_nothing(
    client, app, factory, db, settings, sandbox, stripe_mock
):
    payment = await borrowed_payment(client, factory)
    sandbox.mark_expired(payment["session_id"])
    with StripeDown(stripe_mock):
        outcome = await tasks.poll_expired_sessions(task_ctx(app, db, settings))
    assert outcome["unreachable"] == 1
    assert (await payment_row(db, payment["id"])).status == "PENDING"


async def test_renew_expired_payment_gives_a_new_payable_session(
    client, browser, app, factory, db, settings, sandbox
):
    member = await factory.user()
    book = await factory.book(title="Kindred")
    payment = the_payment(await borrow_ok(client, factory, member, book))
    old_id, old_url = payment["session_id"], payment["session_url"]
    sandbox.mark_expired(old_id)
    await tasks.poll_expired_sessions(task_ctx(app, db, settings))
    assert (await payment_row(db, payment["id"])).status == "EXPIRED"

    response = await client.post(
        f"/api/payments/{payment['id']}/renew/", headers=factory.auth(member)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == payment["id"]
    assert body["status"] == "PENDING"
    assert body["money_to_pay"] == payment["money_to_pay"]
    assert body["session_id"] and body["session_id"] != old_id
    assert body["session_url"] and body["session_url"] != old_url
    row = await payment_row(db, payment["id"])
    assert row.status == "PENDING"
    assert row.session_id == body["session_id"]
    assert row.session_url == body["session_url"]
    new = sandbox.sessions[body["session_id"]]
    assert new["status"] == "open"
    assert new["metadata"] == {"payment_id": str(payment["id"])}
    assert new["amount_total"] == 600
    assert PLACEHOLDER in new["success_url"]

    # The old link is dead; the new one pays.
    assert (await browser.post(old_url + "/pay")).status_code == 400
    paid = await pay(client, browser, body["session_url"])
    assert paid.status_code == 200, paid.text
    assert paid.json()["payment"]["status"] == "PAID"
    assert (await payment_row(db, payment["id"])).status == "PAID"


async def test_renew_without_trailing_slash(client, factory, db, sandbox):
    member = await factory.user()
    book = await factory.book()
    payment = the_payment(await borrow_ok(client, factory, member, book))
    sandbox.mark_expired(payment["session_id"])
    response = await client.post(
        f"/api/payments/{payment['id']}/renew", headers=factory.auth(member)
    )
    assert response.status_code == 200, response.text
    assert response.json()["session_id"] != payment["session_id"]


async def test_renew_pending_whose_session_expired_unnoticed(client, factory, db, sandbox):
    member = await factory.user()
    book = await factory.book()
    payment = the_payment(await borrow_ok(client, factory, member, book))
    sandbox.mark_expired(payment["session_id"])  # we have not heard yet: still PENDING
    response = await client.post(
        f"/api/payments/{payment['id']}/renew/", headers=factory.auth(member)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "PENDING"
    assert body["session_id"] != payment["session_id"]
    assert (await payment_row(db, payment["id"])).session_id == body["session_id"]
    assert sandbox.sessions[body["session_id"]]["status"] == "open"


async def test_renew_pending_whose_session_was_paid_unnoticed_does_not_charge_twice(
    client, factory, db, sandbox
):
    member = await factory.user()
    book = await factory.book()
    payment = the_payment(await borrow_ok(client, factory, member, book))
    sandbox.mark_paid(payment["session_id"])
    before = len(sandbox.sessions)
    response = await client.post(
        f"/api/payments/{payment['id']}/renew/", headers=factory.auth(member)
    )
    assert response.status_code in (200, 400), response.text
    row = await payment_row(db, payment["id"])
    assert row.status == "PAID"
    assert row.session_id == payment["session_id"]
    assert len(sandbox.sessions) == before  # no second session to pay
    if response.status_code == 200:
        assert response.json()["status"] == "PAID"
    else:
        assert response.json()["code"] == "payment_already_paid"


async def test_renew_paid_payment_is_refused(client, browser, factory, db, sandbox):
    member = await factory.user()
    book = await factory.book()
    payment = the_payment(await borrow_ok(client, factory, member, book))
    assert (await pay(client, browser, payment["session_url"])).status_code == 200
    before = len(sandbox.sessions)
    response = await client.post(
        f"/api/payments/{payment['id']}/renew/", headers=factory.auth(member)
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "payment_already_paid"
    row = await payment_row(db, payment["id"])
    assert row.status == "PAID"
    assert row.session_id == payment["session_id"]
    assert len(sandbox.sessions) == before


async def test_renew_pending_open_session_is_refused(client, factory, db, sandbox):
    member = await factory.user()
    book = await factory.book()
    payment = the_payment(await borrow_ok(client, factory, member, book))
    before = len(sandbox.sessions)
    response = await client.post(
        f"/api/payments/{payment['id']}/renew/", headers=factory.auth(member)
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "payment_not_expired"
    row = await payment_row(db, payment["id"])
    assert row.status == "PENDING"
    assert row.session_id == payment["session_id"]
    assert row.session_url == payment["session_url"]
    assert len(sandbox.sessions) == before
    assert sandbox.sessions[payment["session_id"]]["status"] == "open"


async def test_renew_with_stripe_down_is_503_and_changes_nothing(
    client, factory, db, sandbox, stripe_mock
):
    member = await factory.user()
    book = await factory.book()
    payment = the_payment(await borrow_ok(client, factory, member, book))
    sandbox.mark_expired(payment["session_id"])
    with StripeDown(stripe_mock):
        response = await client.post(
            f"/api/payments/{payment['id']}/renew/", headers=factory.auth(member)
        )
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "payment_provider_unavailable"
    row = await payment_row(db, payment["id"])
    assert row.session_id == payment["session_id"]


async def test_renew_requires_authentication(client, factory, db, sandbox):
    member = await factory.user()
    book = await factory.book()
    payment = the_payment(await borrow_ok(client, factory, member, book))
    sandbox.mark_expired(payment["session_id"])
    response = await client.post(f"/api/payments/{payment['id']}/renew/")
    assert response.status_code == 401
    assert (await payment_row(db, payment["id"])).session_id == payment["session_id"]


async def test_renew_unknown_payment_is_404(client, factory):
    member = await factory.user()
    response = await client.post("/api/payments/999999/renew/", headers=factory.auth(member))
    assert response.status_code == 404
    assert response.json()["code"] == "payment_not_found"


# -- Stripe outages -----------------------------------------------------------------------------


@pytest.mark.parametrize("effect", OUTAGES)
async def test_borrow_with_stripe_down_is_503_and_changes_nothing(
    client, factory, db, sandbox, stripe_mock, effect
):
    member = await factory.user()
    book = await factory.book(inventory=3)
    with StripeDown(stripe_mock, effect):
        response = await borrow(client, factory, member, book)
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["code"] == "payment_provider_unavailable"
    assert body["detail"]
    assert await count(db, "SELECT count(*) FROM borrowings") == 0
    assert await count(db, "SELECT count(*) FROM payments") == 0
    assert await count(db, "SELECT count(*) FROM notifications") == 0
    assert await book_inventory(db, book.id) == 3
    assert sandbox.sessions == {}

    # Stripe is back: borrowing works and leaves exactly one of everything.
    borrowing = await borrow_ok(client, factory, member, book)
    assert await count(db, "SELECT count(*) FROM borrowings") == 1
    assert await count(db, "SELECT count(*) FROM payments") == 1
    assert await book_inventory(db, book.id) == 2
    assert the_payment(borrowing)["session_id"] in sandbox.sessions


@pytest.mark.parametrize("effect", OUTAGES)
async def test_late_return_with_stripe_down_is_recorded_with_sessionless_fine(
    client, factory, db, sandbox, stripe_mock, effect
):
    member = await factory.user()
    book = await factory.book(inventory=1, daily_fee=Decimal("1.50"))
    borrowing = await borrow_ok(client, factory, member, book, days=4)
    assert await book_inventory(db, book.id) == 0

    with StripeDown(stripe_mock, effect):
        response = await return_on(client, factory, member, borrowing["id"], day=7)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["actual_return_date"] == str(DAY0 + timedelta(days=7))
    fine = the_payment(body, "FINE")
    assert fine["status"] == "PENDING"
    assert fine["money_to_pay"] == "9.00"  # 3 days * 1.50 * 2
    assert fine["session_id"] is None
    assert fine["session_url"] is None

    async with db.sessionmaker() as session:
        row = await session.get(Borrowing, borrowing["id"])
        assert row is not None
        assert row.actual_return_date == DAY0 + timedelta(days=7)
    assert await book_inventory(db, book.id) == 1
    fine_row = await payment_row(db, fine["id"])
    assert (fine_row.type, fine_row.status, fine_row.session_id) == ("FINE", "PENDING", None)
    assert fine_row.money_to_pay == Decimal("9.00")

    # A second return is still refused.
    again = await return_on(client, factory, member, borrowing["id"], day=7)
    assert again.status_code == 400
    assert await book_inventory(db, book.id) == 1


async def test_sessionless_fine_gets_a_session_on_renew(
    client, browser, factory, db, sandbox, stripe_mock
):
    member = await factory.user()
    book = await factory.book(title="Beloved", daily_fee=Decimal("1.50"))
    borrowing = await borrow_ok(client, factory, member, book, days=4)
    with StripeDown(stripe_mock):
        returned = await return_on(client, factory, member, borrowing["id"], day=6)
    fine = the_payment(returned.json(), "FINE")
    assert fine["session_id"] is None

    # While Stripe is still down, renewing fails and changes nothing.
    with StripeDown(stripe_mock):
        down = await client.post(f"/api/payments/{fine['id']}/renew/", headers=factory.auth(member))
    assert down.status_code == 503, down.text
    assert down.json()["code"] == "payment_provider_unavailable"
    assert (await payment_row(db, fine["id"])).session_id is None

    response = await client.post(f"/api/payments/{fine['id']}/renew/", headers=factory.auth(member))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "PENDING"
    assert body["type"] == "FINE"
    assert body["session_id"] and body["session_url"]
    row = await payment_row(db, fine["id"])
    assert (row.status, row.session_id, row.session_url) == (
        "PENDING",
        body["session_id"],
        body["session_url"],
    )
    session = sandbox.sessions[body["session_id"]]
    assert session["amount_total"] == 600  # 2 days * 1.50 * 2
    assert session["metadata"] == {"payment_id": str(fine["id"])}
    assert "Beloved" in session["line_items_preview"]["name"]

    paid = await pay(client, browser, body["session_url"])
    assert paid.status_code == 200, paid.text
    assert (await payment_row(db, fine["id"])).status == "PAID"


async def test_sessionless_fine_gets_a_session_from_the_worker(
    client, browser, app, factory, db, settings, sandbox, stripe_mock
):
    member = await factory.user()
    book = await factory.book(daily_fee=Decimal("1.50"))
    borrowing = await borrow_ok(client, factory, member, book, days=4)
    with StripeDown(stripe_mock):
        returned = await return_on(client, factory, member, borrowing["id"], day=5)
    fine = the_payment(returned.json(), "FINE")
    assert fine["session_id"] is None
    ctx = task_ctx(app, db, settings)

    with StripeDown(stripe_mock):
        assert await tasks.attach_missing_sessions(ctx) == 0
    assert (await payment_row(db, fine["id"])).session_id is None
    # The expiry poll leaves a payment without a session alone.
    await tasks.poll_expired_sessions(ctx)
    assert (await payment_row(db, fine["id"])).status == "PENDING"

    assert await tasks.attach_missing_sessions(ctx) == 1
    row = await payment_row(db, fine["id"])
    assert row.status == "PENDING"
    assert row.session_id and row.session_id in sandbox.sessions
    assert row.session_url == sandbox.sessions[row.session_id]["url"]
    assert sandbox.sessions[row.session_id]["metadata"] == {"payment_id": str(fine["id"])}
    assert sandbox.sessions[row.session_id]["amount_total"] == 300

    # Running it again (or the per-payment job) changes nothing.
    assert await tasks.attach_missing_sessions(ctx) == 0
    assert await tasks.attach_missing_session(ctx, fine["id"]) is False
    assert (await payment_row(db, fine["id"])).session_id == row.session_id

    detail = await client.get(f"/api/payments/{fine['id']}/", headers=factory.auth(member))
    assert detail.json()["session_url"] == row.session_url
    page = await browser.get(row.session_url)
    assert page.status_code == 200
    assert "$3.00" in page.text


# -- fines block borrowing ----------------------------------------------------------------------


async def test_unpaid_fine_blocks_borrowing_until_paid(client, browser, factory, db, sandbox):
    member = await factory.user()
    first = await factory.book(title="First")
    second = await factory.book(title="Second", inventory=2)
    borrowing = await borrow_ok(client, factory, member, first, days=2)
    returned = await return_on(client, factory, member, borrowing["id"], day=4)
    assert returned.status_code == 200, returned.text
    fine = the_payment(returned.json(), "FINE")
    sessions_before = len(sandbox.sessions)

    blocked = await borrow(client, factory, member, second)
    assert blocked.status_code == 400, blocked.text
    assert blocked.json()["code"] == "unpaid_fines"
    assert "fine" in blocked.json()["detail"].lower()
    assert await count(db, "SELECT count(*) FROM borrowings") == 1
    assert await book_inventory(db, second.id) == 2
    assert len(sandbox.sessions) == sessions_before  # no session opened for nothing

    paid = await pay(client, browser, fine["session_url"])
    assert paid.status_code == 200, paid.text
    assert (await payment_row(db, fine["id"])).status == "PAID"

    allowed = await borrow(client, factory, member, second)
    assert allowed.status_code == 201, allowed.text
    assert await book_inventory(db, second.id) == 1


async def test_expired_fine_blocks_borrowing(client, app, factory, db, settings, sandbox):
    member = await factory.user()
    first = await factory.book(title="First")
    second = await factory.book(title="Second")
    borrowing = await borrow_ok(client, factory, member, first, days=2)
    returned = await return_on(client, factory, member, borrowing["id"], day=3)
    fine = the_payment(returned.json(), "FINE")
    sandbox.mark_expired(fine["session_id"])
    await tasks.poll_expired_sessions(task_ctx(app, db, settings))
    assert (await payment_row(db, fine["id"])).status == "EXPIRED"

    blocked = await borrow(client, factory, member, second)
    assert blocked.status_code == 400, blocked.text
    assert blocked.json()["code"] == "unpaid_fines"


async def test_sessionless_fine_blocks_borrowing(client, factory, db, stripe_mock):
    member = await factory.user()
    first = await factory.book(title="First")
    second = await factory.book(title="Second")
    borrowing = await borrow_ok(client, factory, member, first, days=2)
    with StripeDown(stripe_mock):
        returned = await return_on(client, factory, member, borrowing["id"], day=3)
    assert returned.status_code == 200
    blocked = await borrow(client, factory, member, second)
    assert blocked.status_code == 400, blocked.text
    assert blocked.json()["code"] == "unpaid_fines"


async def test_unpaid_borrowing_fee_does_not_block_borrowing(client, factory, db):
    member = await factory.user()
    first = await factory.book(title="First")
    second = await factory.book(title="Second")
    await borrow_ok(client, factory, member, first)
    response = await borrow(client, factory, member, second)
    assert response.status_code == 201, response.text


async def test_another_members_fine_does_not_block(client, factory, db):
    late = await factory.user()
    other = await factory.user()
    book = await factory.book(inventory=3)
    borrowing = await borrow_ok(client, factory, late, book, days=2)
    assert (await return_on(client, factory, late, borrowing["id"], day=5)).status_code == 200
    response = await borrow(client, factory, other, book)
    assert response.status_code == 201, response.text


# -- visibility ---------------------------------------------------------------------------------


async def visibility_setup(client: httpx.AsyncClient, browser: Any, factory: Any) -> Any:
    """alice: one paid PAYMENT; bob: a PENDING PAYMENT and a PENDING FINE."""
    alice = await factory.user()
    bob = await factory.user()
    staff = await factory.user(is_staff=True)
    book = await factory.book(inventory=5)
    a = the_payment(await borrow_ok(client, factory, alice, book))
    assert (await pay(client, browser, a["session_url"])).status_code == 200
    b_borrowing = await borrow_ok(client, factory, bob, book, days=2)
    returned = await return_on(client, factory, bob, b_borrowing["id"], day=3)
    assert returned.status_code == 200
    b_payment = the_payment(returned.json())
    b_fine = the_payment(returned.json(), "FINE")
    return alice, bob, staff, a, b_payment, b_fine


def ids(response: httpx.Response) -> set[int]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(body["results"])
    return {p["id"] for p in body["results"]}


async def test_members_list_only_their_own_payments(client, browser, factory):
    alice, bob, _staff, a, b_payment, b_fine = await visibility_setup(client, browser, factory)
    assert ids(await client.get("/api/payments/", headers=factory.auth(alice))) == {a["id"]}
    assert ids(await client.get("/api/payments/", headers=factory.auth(bob))) == {
        b_payment["id"],
        b_fine["id"],
    }
    # user_id is ignored for members.
    sneaky = await client.get(
        "/api/payments/", params={"user_id": bob.id}, headers=factory.auth(alice)
    )
    assert ids(sneaky) == {a["id"]}
    assert ids(
        await client.get("/api/payments", params={"type": "FINE"}, headers=factory.auth(bob))
    ) == {b_fine["id"]}
    assert (
        ids(
            await client.get("/api/payments/", params={"type": "FINE"}, headers=factory.auth(alice))
        )
        == set()
    )


async def test_staff_list_all_payments_with_filters(client, browser, factory):
    alice, bob, staff, a, b_payment, b_fine = await visibility_setup(client, browser, factory)
    auth = factory.auth(staff)
    everything = await client.get("/api/payments/", headers=auth)
    assert ids(everything) == {a["id"], b_payment["id"], b_fine["id"]}
    listed = everything.json()["results"]
    assert [p["id"] for p in listed] == sorted((p["id"] for p in listed), reverse=True)

    async def filtered(**params: Any) -> set[int]:
        return ids(await client.get("/api/payments/", params=params, headers=auth))

    assert await filtered(user_id=alice.id) == {a["id"]}
    assert await filtered(user_id=bob.id) == {b_payment["id"], b_fine["id"]}
    assert await filtered(status="PAID") == {a["id"]}
    assert await filtered(status="PENDING") == {b_payment["id"], b_fine["id"]}
    assert await filtered(status="EXPIRED") == set()
    assert await filtered(type="FINE") == {b_fine["id"]}
    assert await filtered(type="PAYMENT") == {a["id"], b_payment["id"]}
    assert await filtered(user_id=bob.id, type="PAYMENT") == {b_payment["id"]}
    assert await filtered(user_id=bob.id, status="PAID") == set()
    assert await filtered(user_id=staff.id) == set()


async def test_payment_list_rejects_bad_filters_and_paginates(client, browser, factory):
    _alice, _bob, staff, *_ = await visibility_setup(client, browser, factory)
    auth = factory.auth(staff)
    bad = await client.get("/api/payments/", params={"status": "LOST"}, headers=auth)
    assert bad.status_code == 422
    bad = await client.get("/api/payments/", params={"type": "GIFT"}, headers=auth)
    assert bad.status_code == 422
    page = await client.get("/api/payments/", params={"limit": 2}, headers=auth)
    assert page.status_code == 200
    body = page.json()
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"] and body["previous"] is None
    last = await client.get("/api/payments/", params={"limit": 2, "offset": 2}, headers=auth)
    assert len(last.json()["results"]) == 1
    assert last.json()["next"] is None


async def test_payments_require_authentication(client, browser, factory):
    _, _, _, a, *_ = await visibility_setup(client, browser, factory)
    assert (await client.get("/api/payments/")).status_code == 401
    assert (await client.get(f"/api/payments/{a['id']}/")).status_code == 401


async def test_read_payment_own_other_and_staff(client, browser, factory):
    alice, _bob, staff, a, b_payment, b_fine = await visibility_setup(client, browser, factory)
    own = await client.get(f"/api/payments/{a['id']}/", headers=factory.auth(alice))
    assert own.status_code == 200, own.text
    assert own.json()["id"] == a["id"]
    assert own.json()["status"] == "PAID"
    assert own.json()["type"] == "PAYMENT"
    assert own.json()["money_to_pay"] == a["money_to_pay"]
    assert {
        "id",
        "status",
        "type",
        "borrowing_id",
        "session_url",
        "session_id",
        "money_to_pay",
    } <= set(own.json())

    other = await client.get(f"/api/payments/{b_fine['id']}/", headers=factory.auth(alice))
    assert other.status_code == 404
    assert other.json()["code"] == "payment_not_found"
    missing = await client.get("/api/payments/999999/", headers=factory.auth(alice))
    assert missing.status_code == 404
    assert missing.json() == other.json()  # existence is not revealed

    for pid in (a["id"], b_payment["id"], b_fine["id"]):
        seen = await client.get(f"/api/payments/{pid}", headers=factory.auth(staff))
        assert seen.status_code == 200, seen.text
        assert seen.json()["id"] == pid


async def test_renew_another_members_payment_is_404(client, browser, factory, db, sandbox):
    alice, bob, _staff, _a, _b_payment, b_fine = await visibility_setup(client, browser, factory)
    sandbox.mark_expired(b_fine["session_id"])
    before = len(sandbox.sessions)
    response = await client.post(
        f"/api/payments/{b_fine['id']}/renew/", headers=factory.auth(alice)
    )
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "payment_not_found"
    row = await payment_row(db, b_fine["id"])
    assert row.session_id == b_fine["session_id"]
    assert len(sandbox.sessions) == before
    # Its owner can.
    response = await client.post(f"/api/payments/{b_fine['id']}/renew/", headers=factory.auth(bob))
    assert response.status_code == 200, response.text


async def test_paid_at_and_status_agree_in_database(client, browser, factory, db):
    """Only the paid payment has paid_at; nothing else was touched by paying it."""
    _, _, _, a, b_payment, b_fine = await visibility_setup(client, browser, factory)
    async with db.sessionmaker() as session:
        rows = (await session.execute(select(Payment.id, Payment.status, Payment.paid_at))).all()
        total = await session.scalar(select(func.count()).select_from(Payment))
    assert total == 3
    by_id = {row.id: row for row in rows}
    assert by_id[a["id"]].status == "PAID" and by_id[a["id"]].paid_at is not None
    for pid in (b_payment["id"], b_fine["id"]):
        assert by_id[pid].status == "PENDING" and by_id[pid].paid_at is None


# -- concurrency ----------------------------------------------------------------------------------


async def test_concurrent_confirmations_mark_paid_and_notify_once(
    client, browser, factory, db, sandbox
):
    payment = await borrowed_payment(client, factory)
    redirect = await browser.post(payment["session_url"] + "/pay")
    path = app_path(redirect.headers["location"])
    payload, header = sandbox.signed_event(
        "checkout.session.completed", sandbox.sessions[payment["session_id"]]
    )
    responses = await asyncio.gather(
        client.get(path),
        client.get(path),
        post_event(client, payload, header),
        client.get(path),
    )
    assert [r.status_code for r in responses] == [200, 200, 200, 200], [r.text for r in responses]
    assert (await payment_row(db, payment["id"])).status == "PAID"
    assert await paid_notifications(db) == 1


async def test_concurrent_renewals_leave_one_payable_session(client, factory, db, sandbox):
    member = await factory.user()
    book = await factory.book()
    payment = the_payment(await borrow_ok(client, factory, member, book))
    sandbox.mark_expired(payment["session_id"])
    auth = factory.auth(member)
    responses = await asyncio.gather(
        *(client.post(f"/api/payments/{payment['id']}/renew/", headers=auth) for _ in range(3))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 400, 400], [r.text for r in responses]
    winner = next(r.json() for r in responses if r.status_code == 200)
    row = await payment_row(db, payment["id"])
    assert row.status == "PENDING"
    assert row.session_id == winner["session_id"]
    open_sessions = [s["id"] for s in sandbox.sessions.values() if s["status"] == "open"]
    assert open_sessions == [winner["session_id"]]


async def test_concurrent_borrows_of_last_copy_leave_one_payable_session(
    client, factory, db, sandbox
):
    book = await factory.book(inventory=1)
    members = [await factory.user() for _ in range(3)]
    responses = await asyncio.gather(*(borrow(client, factory, m, book) for m in members))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 400, 400], [r.text for r in responses]
    winner = next(r.json() for r in responses if r.status_code == 201)
    assert await book_inventory(db, book.id) == 0
    assert await count(db, "SELECT count(*) FROM payments") == 1
    assert await count(db, "SELECT count(*) FROM borrowings") == 1
    open_sessions = [s["id"] for s in sandbox.sessions.values() if s["status"] == "open"]
    assert open_sessions == [the_payment(winner)["session_id"]]


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/api/payments/0/"),
        ("GET", "/api/payments/99999999999/"),
        ("GET", "/api/payments/abc/"),
        ("GET", "/api/payments/?user_id=99999999999"),
        ("GET", "/api/payments/?status=paid"),
        ("GET", "/api/payments/?offset=-1"),
        ("POST", "/api/payments/99999999999/renew/"),
        ("GET", "/api/payments/success/?session_id=" + "x" * 256),
        ("GET", "/api/payments/success/?session_id=cs_%00"),
        ("GET", "/api/payments/cancel/?session_id="),
    ],
)
async def test_bad_input_is_a_client_error_never_500(client, factory, method, url):
    staff = await factory.user(is_staff=True)
    response = await client.request(method, url, headers=factory.auth(staff))
    assert response.status_code in (400, 404, 422), response.text


async def test_http_stack_finds_sniffio():
    """httpcore (under the Stripe and Telegram clients) imports sniffio on every request;
    without it that is a failed import each time, which Python never caches."""
    from httpcore._synchronization import current_async_library

    assert current_async_library() == "asyncio"
    assert "sniffio" in sys.modules  # found once, then a dictionary lookup
