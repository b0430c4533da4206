"""Checkout through the sandbox Stripe: what the SDK asks Stripe for, the hosted page, and
the whole way from borrowing to PAID.

The real `stripe` SDK talks to the sandbox over respx, so what is asserted about the requests
is what Stripe itself would have received.
"""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlsplit

from library_service.models import Payment
from tests.factories import (
    CHECKOUT_PATH,
    app_path,
    checkout_requests,
    fetch,
    paid_notifications,
    query_param,
    the_payment,
)

PLACEHOLDER = "session_id={CHECKOUT_SESSION_ID}"


async def test_borrow_pay_in_sandbox_and_success_redirect(client, browser, factory, db, sandbox):
    member = await factory.member()
    book = await factory.book(title="The Dispossessed", inventory=2, daily_fee=Decimal("1.50"))
    borrowing = await factory.borrow_ok(client, member, book, days=4, on=0)
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

    assert (await fetch(db, Payment, payment["id"])).status == "PENDING"  # not yet told
    response = await client.get(app_path(location))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["detail"]
    assert body["payment"]["id"] == payment["id"]
    assert body["payment"]["status"] == "PAID"
    assert body["payment"]["money_to_pay"] == "6.00"
    row = await fetch(db, Payment, payment["id"])
    assert row.status == "PAID"
    assert row.paid_at is not None
    assert await paid_notifications(db) == 1

    # The browser comes back again (reload, back button): harmless.
    again = await client.get(app_path(location))
    assert again.status_code == 200, again.text
    assert again.json()["payment"]["status"] == "PAID"
    assert (await fetch(db, Payment, payment["id"])).status == "PAID"
    assert await paid_notifications(db) == 1

    # The borrowing shows the payment as paid.
    detail = await client.get(f"/api/borrowings/{borrowing['id']}/", headers=factory.auth(member))
    assert detail.status_code == 200
    assert the_payment(detail.json())["status"] == "PAID"


async def test_checkout_session_request_sent_to_stripe(client, factory, sandbox, stripe_mock):
    member = await factory.member()
    book = await factory.book(title="The Left Hand of Darkness", daily_fee=Decimal("1.50"))
    payment = the_payment(await factory.borrow_ok(client, member, book, days=4, on=0))

    sent = checkout_requests(sandbox)
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
        if call.request.method == "POST" and call.request.url.path == CHECKOUT_PATH
    ]
    assert len(posts) == 1
    assert posts[0].headers.get("Idempotency-Key")
    assert posts[0].headers["Authorization"] == "Bearer sk_test_suite"


async def test_fine_checkout_session_request_sent_to_stripe(
    client, browser, factory, sandbox, stripe_mock
):
    member = await factory.member()
    book = await factory.book(title="Solaris", daily_fee=Decimal("1.50"))
    borrowing = await factory.borrow_ok(client, member, book, days=4, on=0)
    response = await factory.return_book(client, member, borrowing["id"], on=8)
    assert response.status_code == 200, response.text
    fine = the_payment(response.json(), "FINE")
    assert fine["money_to_pay"] == "12.00"  # 4 days late * 1.50 * 2

    sent = checkout_requests(sandbox)
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
        if call.request.method == "POST" and call.request.url.path == CHECKOUT_PATH
    ]
    assert len(keys) == 2
    assert all(keys)
    assert keys[0] != keys[1]

    # The fine's page shows it, and paying it works.
    page = await browser.get(fine["session_url"])
    assert page.status_code == 200
    assert "Solaris" in page.text
    assert "$12.00" in page.text
