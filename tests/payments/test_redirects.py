"""Stripe's redirects back to the API: success (asks Stripe, marks PAID) and cancel (the
payment stays payable)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from library_service.models import Payment
from tests.factories import (
    StripeDown,
    app_path,
    assert_error,
    fetch,
    paid_notifications,
    pay,
    query_param,
)


async def test_success_without_trailing_slash_works(client, browser, db, payment):
    await browser.post(payment["session_url"] + "/pay")
    response = await client.get(
        "/api/payments/success", params={"session_id": payment["session_id"]}
    )
    assert response.status_code == 200, response.text
    assert (await fetch(db, Payment, payment["id"])).status == "PAID"


async def test_cancel_redirect_says_pay_later_and_keeps_payment_pending(
    client, browser, db, sandbox, payment
):
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
    row = await fetch(db, Payment, payment["id"])
    assert row.status == "PENDING"
    assert row.session_id == session_id
    assert sandbox.sessions[session_id]["status"] == "open"
    assert await paid_notifications(db) == 0

    # ... and it can indeed be paid later with the same link.
    paid = await pay(client, browser, payment["session_url"])
    assert paid.status_code == 200, paid.text
    assert (await fetch(db, Payment, payment["id"])).status == "PAID"


async def test_success_for_unpaid_session_is_refused(client, db, payment):
    response = await client.get(
        "/api/payments/success/", params={"session_id": payment["session_id"]}
    )
    assert_error(response, 400, "payment_not_completed")
    row = await fetch(db, Payment, payment["id"])
    assert row.status == "PENDING"
    assert row.paid_at is None
    assert await paid_notifications(db) == 0


async def test_success_for_expired_unpaid_session_is_refused(client, db, sandbox, payment):
    sandbox.mark_expired(payment["session_id"])
    response = await client.get(
        "/api/payments/success/", params={"session_id": payment["session_id"]}
    )
    assert_error(response, 400, "payment_not_completed")
    assert (await fetch(db, Payment, payment["id"])).status != "PAID"


@pytest.mark.parametrize("route", ["success", "cancel"])
async def test_redirect_with_unknown_session_is_404(client, factory, route):
    await factory.borrowed(client)
    response = await client.get(f"/api/payments/{route}/", params={"session_id": "cs_test_nope"})
    assert_error(response, 404, "unknown_session")


@pytest.mark.parametrize("route", ["success", "cancel"])
async def test_redirect_without_session_id_is_422(client, route):
    response = await client.get(f"/api/payments/{route}/")
    assert response.status_code == 422


async def test_success_with_stripe_down_is_503_and_changes_nothing(
    client, browser, db, stripe_mock, payment
):
    redirect = await browser.post(payment["session_url"] + "/pay")
    with StripeDown(stripe_mock):
        response = await client.get(app_path(redirect.headers["location"]))
    assert_error(response, 503, "payment_provider_unavailable")
    assert (await fetch(db, Payment, payment["id"])).status == "PENDING"
    # Once Stripe answers again, the same redirect completes it.
    response = await client.get(app_path(redirect.headers["location"]))
    assert response.status_code == 200, response.text
    assert (await fetch(db, Payment, payment["id"])).status == "PAID"


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
    staff = await factory.staff()
    response = await client.request(method, url, headers=factory.auth(staff))
    assert response.status_code in (400, 404, 422), response.text
