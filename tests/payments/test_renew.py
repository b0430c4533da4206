"""POST /api/payments/{id}/renew/: a new Checkout Session for a payment whose session
expired, never a second charge."""

from __future__ import annotations

import pytest

from library_service.models import Payment
from library_service.payments import tasks
from tests.factories import (
    StripeDown,
    assert_error,
    fetch,
    pay,
    task_ctx,
    the_payment,
)

PLACEHOLDER = "session_id={CHECKOUT_SESSION_ID}"


async def test_renew_expired_payment_gives_a_new_payable_session(
    client, browser, app, factory, db, settings, sandbox
):
    member = await factory.member()
    book = await factory.book(title="Kindred")
    payment = the_payment(await factory.borrow_ok(client, member, book, on=0))
    old_id, old_url = payment["session_id"], payment["session_url"]
    sandbox.mark_expired(old_id)
    await tasks.poll_expired_sessions(task_ctx(app, db, settings))
    assert (await fetch(db, Payment, payment["id"])).status == "EXPIRED"

    response = await factory.renew(client, member, payment["id"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == payment["id"]
    assert body["status"] == "PENDING"
    assert body["money_to_pay"] == payment["money_to_pay"]
    assert body["session_id"] and body["session_id"] != old_id
    assert body["session_url"] and body["session_url"] != old_url
    row = await fetch(db, Payment, payment["id"])
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
    assert (await fetch(db, Payment, payment["id"])).status == "PAID"


async def test_renew_without_trailing_slash(client, factory, db, sandbox):
    member, borrowing = await factory.borrowed(client)
    payment = the_payment(borrowing)
    sandbox.mark_expired(payment["session_id"])
    response = await client.post(
        f"/api/payments/{payment['id']}/renew", headers=factory.auth(member)
    )
    assert response.status_code == 200, response.text
    assert response.json()["session_id"] != payment["session_id"]


async def test_renew_pending_whose_session_expired_unnoticed(client, factory, db, sandbox):
    member, borrowing = await factory.borrowed(client)
    payment = the_payment(borrowing)
    sandbox.mark_expired(payment["session_id"])  # we have not heard yet: still PENDING
    response = await factory.renew(client, member, payment["id"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "PENDING"
    assert body["session_id"] != payment["session_id"]
    assert (await fetch(db, Payment, payment["id"])).session_id == body["session_id"]
    assert sandbox.sessions[body["session_id"]]["status"] == "open"


@pytest.mark.parametrize(
    ("confirmed", "statuses"),
    [
        pytest.param(True, {400}, id="confirmed"),
        # Stripe took the money, but neither the redirect nor the webhook has told us yet
        pytest.param(False, {200, 400}, id="paid-unnoticed"),
    ],
)
async def test_renew_of_a_paid_payment_never_charges_twice(
    client, browser, factory, db, sandbox, confirmed, statuses
):
    member, borrowing = await factory.borrowed(client)
    payment = the_payment(borrowing)
    if confirmed:
        assert (await pay(client, browser, payment["session_url"])).status_code == 200
    else:
        sandbox.mark_paid(payment["session_id"])
    before = len(sandbox.sessions)
    response = await factory.renew(client, member, payment["id"])
    assert response.status_code in statuses, response.text
    if response.status_code == 200:
        assert response.json()["status"] == "PAID"
    else:
        assert_error(response, 400, "payment_already_paid")
    row = await fetch(db, Payment, payment["id"])
    assert row.status == "PAID"
    assert row.session_id == payment["session_id"]
    assert len(sandbox.sessions) == before  # no second session to pay


async def test_renew_pending_open_session_is_refused(client, factory, db, sandbox):
    member, borrowing = await factory.borrowed(client)
    payment = the_payment(borrowing)
    before = len(sandbox.sessions)
    response = await factory.renew(client, member, payment["id"])
    assert_error(response, 400, "payment_not_expired")
    row = await fetch(db, Payment, payment["id"])
    assert row.status == "PENDING"
    assert row.session_id == payment["session_id"]
    assert row.session_url == payment["session_url"]
    assert len(sandbox.sessions) == before
    assert sandbox.sessions[payment["session_id"]]["status"] == "open"


async def test_renew_with_stripe_down_is_503_and_changes_nothing(
    client, factory, db, sandbox, stripe_mock
):
    member, borrowing = await factory.borrowed(client)
    payment = the_payment(borrowing)
    sandbox.mark_expired(payment["session_id"])
    with StripeDown(stripe_mock):
        response = await factory.renew(client, member, payment["id"])
    assert_error(response, 503, "payment_provider_unavailable")
    row = await fetch(db, Payment, payment["id"])
    assert row.session_id == payment["session_id"]


async def test_renew_requires_authentication(client, factory, db, sandbox):
    _, borrowing = await factory.borrowed(client)
    payment = the_payment(borrowing)
    sandbox.mark_expired(payment["session_id"])
    response = await client.post(f"/api/payments/{payment['id']}/renew/")
    assert response.status_code == 401
    assert (await fetch(db, Payment, payment["id"])).session_id == payment["session_id"]


async def test_renew_unknown_payment_is_404(client, factory):
    member = await factory.member()
    response = await client.post("/api/payments/999999/renew/", headers=factory.auth(member))
    assert_error(response, 404, "payment_not_found")
