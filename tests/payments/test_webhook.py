"""Stripe's webhook: signed events applied once each, never undoing a payment."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import respx
import stripe
from sqlalchemy import text

from library_service.dev.fake_stripe import SandboxStripe
from library_service.models import Payment, StripeEvent
from tests.factories import (
    app_path,
    assert_error,
    count,
    fetch,
    paid_notifications,
    pay,
    post_event,
    the_payment,
)


@pytest.mark.parametrize(
    "event_type", ["checkout.session.completed", "checkout.session.async_payment_succeeded"]
)
async def test_webhook_paid_events_mark_paid(client, db, sandbox, event_type, payment):
    payload, header = sandbox.signed_event(event_type, sandbox.mark_paid(payment["session_id"]))
    response = await post_event(client, payload, header)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "handled": True}
    row = await fetch(db, Payment, payment["id"])
    assert row.status == "PAID"
    assert row.paid_at is not None
    assert await paid_notifications(db) == 1
    event_id = json.loads(payload)["id"]
    assert await count(db, StripeEvent, StripeEvent.id == event_id) == 1


async def test_webhook_expired_event_marks_expired(client, db, sandbox, payment):
    payload, header = sandbox.signed_event(
        "checkout.session.expired", sandbox.mark_expired(payment["session_id"])
    )
    response = await post_event(client, payload, header)
    assert response.status_code == 200, response.text
    assert response.json()["handled"] is True
    assert (await fetch(db, Payment, payment["id"])).status == "EXPIRED"
    assert await paid_notifications(db) == 0


async def test_webhook_without_trailing_slash(client, db, sandbox, payment):
    payload, header = sandbox.signed_event(
        "checkout.session.completed", sandbox.mark_paid(payment["session_id"])
    )
    response = await client.post(
        "/api/payments/webhook",
        content=payload,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert (await fetch(db, Payment, payment["id"])).status == "PAID"


async def test_webhook_same_event_twice_applies_once(client, db, sandbox, payment):
    payload, header = sandbox.signed_event(
        "checkout.session.completed", sandbox.mark_paid(payment["session_id"])
    )
    first = await post_event(client, payload, header)
    second = await post_event(client, payload, header)
    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    assert first.json()["handled"] is True
    assert second.json()["handled"] is False
    assert (await fetch(db, Payment, payment["id"])).status == "PAID"
    assert await count(db, StripeEvent) == 1
    assert await paid_notifications(db) == 1


async def test_webhook_redelivered_expiry_does_not_undo_a_renewal(client, factory, db, sandbox):
    """An old expiry event delivered again after the payment was renewed changes nothing."""
    member, borrowing = await factory.borrowed(client)
    payment = the_payment(borrowing)
    payload, header = sandbox.signed_event(
        "checkout.session.expired", sandbox.mark_expired(payment["session_id"])
    )
    assert (await post_event(client, payload, header)).status_code == 200
    renewed = await factory.renew(client, member, payment["id"])
    assert renewed.status_code == 200, renewed.text
    again = await post_event(client, payload, header)
    assert again.status_code == 200
    assert again.json()["handled"] is False
    row = await fetch(db, Payment, payment["id"])
    assert row.status == "PENDING"
    assert row.session_id == renewed.json()["session_id"]
    assert await count(db, StripeEvent) == 1


@pytest.mark.parametrize(
    ("event_type", "applied"),
    [("checkout.session.expired", "EXPIRED"), ("checkout.session.completed", "PAID")],
)
async def test_webhook_event_is_never_applied_twice(
    client, db, sandbox, payment, event_type, applied
):
    """Idempotent per event id: a redelivered event is not applied again, even when the
    payment's state would let it apply (here: put back to PENDING behind the app's back).
    The paid event is recorded and applied in one statement, the others in two."""
    session_id = payment["session_id"]
    marked = (
        sandbox.mark_paid(session_id) if applied == "PAID" else sandbox.mark_expired(session_id)
    )
    payload, header = sandbox.signed_event(event_type, marked)
    assert (await post_event(client, payload, header)).json()["handled"] is True
    assert (await fetch(db, Payment, payment["id"])).status == applied
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            text("UPDATE payments SET status = 'PENDING' WHERE id = :id"), {"id": payment["id"]}
        )
    again = await post_event(client, payload, header)
    assert again.status_code == 200, again.text
    assert again.json()["handled"] is False
    assert (await fetch(db, Payment, payment["id"])).status == "PENDING"
    assert await count(db, StripeEvent) == 1
    assert await paid_notifications(db) == (1 if applied == "PAID" else 0)


async def test_webhook_paid_after_success_redirect_is_harmless(
    client, browser, db, sandbox, payment
):
    assert (await pay(client, browser, payment["session_url"])).status_code == 200
    payload, header = sandbox.signed_event(
        "checkout.session.completed", sandbox.sessions[payment["session_id"]]
    )
    response = await post_event(client, payload, header)
    assert response.status_code == 200, response.text
    assert response.json()["handled"] is False
    assert (await fetch(db, Payment, payment["id"])).status == "PAID"
    assert await paid_notifications(db) == 1


async def test_webhook_expired_event_never_unpays(client, browser, db, sandbox, payment):
    paid = await pay(client, browser, payment["session_url"])
    assert paid.status_code == 200, paid.text
    session = dict(sandbox.sessions[payment["session_id"]], status="expired")
    payload, header = sandbox.signed_event("checkout.session.expired", session)
    response = await post_event(client, payload, header)
    assert response.status_code == 200, response.text
    assert (await fetch(db, Payment, payment["id"])).status == "PAID"


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
    ahead = stripe.WebhookSignature.generate_signature_header(
        payload.decode(),
        sandbox.webhook_secret,
        timestamp=int(datetime.now(UTC).timestamp()) + 600,
    )
    return {
        "wrong-secret": (payload, foreign),
        "missing-header": (payload, None),
        "garbage-header": (payload, "not-a-signature"),
        "empty-header": (payload, ""),
        "tampered-body": (tampered, header),
        "stale-timestamp": (payload, stale),
        "future-timestamp": (payload, ahead),
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
        "future-timestamp",
    ],
)
async def test_webhook_bad_signature_is_400_and_changes_nothing(client, db, sandbox, case, payment):
    session = sandbox.mark_paid(payment["session_id"])
    payload, header = (await _signature_cases(sandbox, session))[case]
    response = await post_event(client, payload, header)
    assert_error(response, 400, "invalid_signature")
    assert response.json()["detail"]
    assert (await fetch(db, Payment, payment["id"])).status == "PENDING"
    assert await count(db, StripeEvent) == 0
    assert await paid_notifications(db) == 0


async def test_webhook_signed_garbage_is_400_not_500(client, settings):
    payload = "this is not json"
    header = stripe.WebhookSignature.generate_signature_header(
        payload, settings.STRIPE_WEBHOOK_SECRET
    )
    response = await post_event(client, payload.encode(), header)
    assert response.status_code == 400, response.text
    assert response.json()["code"]


async def test_webhook_unknown_event_type_is_accepted_and_ignored(client, db, sandbox, payment):
    session = sandbox.mark_paid(payment["session_id"])
    payload, header = sandbox.signed_event("payment_intent.created", session)
    response = await post_event(client, payload, header)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "handled": False}
    row = await fetch(db, Payment, payment["id"])
    assert row.status == "PENDING"
    assert await paid_notifications(db) == 0


async def test_webhook_own_signed_event_for_unknown_session_is_ignored(
    client, db, settings, payment
):
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
    assert (await fetch(db, Payment, payment["id"])).status == "PENDING"
    assert await paid_notifications(db) == 0


async def test_webhook_completed_but_unpaid_does_not_mark_paid(client, db, sandbox, payment):
    """checkout.session.completed with payment_status unpaid (a delayed payment method):
    the money has not arrived yet."""
    session = dict(sandbox.sessions[payment["session_id"]], status="complete")
    assert session["payment_status"] == "unpaid"
    payload, header = sandbox.signed_event("checkout.session.completed", session)
    response = await post_event(client, payload, header)
    assert response.status_code == 200, response.text
    assert (await fetch(db, Payment, payment["id"])).status == "PENDING"
    assert await paid_notifications(db) == 0


async def test_sandbox_delivers_signed_webhook_on_pay(
    client, browser, app, db, sandbox, stripe_mock, payment
):
    """With a webhook URL the sandbox notifies the app itself: PAID without the redirect."""
    stripe_mock.route(host="testserver", name="app").mock(side_effect=respx.ASGIHandler(app))
    previous = sandbox.webhook_url
    sandbox.webhook_url = "http://testserver/api/payments/webhook/"
    try:
        redirect = await browser.post(payment["session_url"] + "/pay")
    finally:
        sandbox.webhook_url = previous
    assert redirect.status_code == 303
    assert stripe_mock.routes["app"].call_count == 1
    row = await fetch(db, Payment, payment["id"])
    assert row.status == "PAID"
    assert await count(db, StripeEvent) == 1
    assert await paid_notifications(db) == 1
    # The redirect that follows is still fine.
    response = await client.get(app_path(redirect.headers["location"]))
    assert response.status_code == 200, response.text
    assert await paid_notifications(db) == 1
