"""Confirmations and renewals of one payment at once: PAID once, one payable session."""

from __future__ import annotations

import asyncio

from library_service.models import Payment
from tests.factories import (
    app_path,
    fetch,
    open_sessions,
    paid_notifications,
    post_event,
    the_payment,
)


async def test_concurrent_confirmations_mark_paid_and_notify_once(
    client, browser, factory, db, sandbox
):
    _, borrowing = await factory.borrowed(client)
    payment = the_payment(borrowing)
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
    assert (await fetch(db, Payment, payment["id"])).status == "PAID"
    assert await paid_notifications(db) == 1


async def test_concurrent_renewals_leave_one_payable_session(client, factory, db, sandbox):
    member, borrowing = await factory.borrowed(client)
    payment = the_payment(borrowing)
    sandbox.mark_expired(payment["session_id"])
    responses = await asyncio.gather(
        *(factory.renew(client, member, payment["id"]) for _ in range(3))
    )
    statuses = sorted(r.status_code for r in responses)
    # One renews; the others find it renewed (409 payment_changed) or its new session open
    # (400 payment_not_expired), depending on where they were when it committed.
    assert statuses[0] == 200, [r.text for r in responses]
    losers = [r.json()["code"] for r in responses if r.status_code != 200]
    assert len(losers) == 2, [r.text for r in responses]
    assert set(losers) <= {"payment_changed", "payment_not_expired"}, losers
    winner = next(r.json() for r in responses if r.status_code == 200)
    row = await fetch(db, Payment, payment["id"])
    assert row.status == "PENDING"
    assert row.session_id == winner["session_id"]
    assert open_sessions(sandbox) == [winner["session_id"]]
