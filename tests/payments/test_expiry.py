"""The worker's expiry poll: PENDING payments follow their sessions at Stripe."""

from __future__ import annotations

from library_service.models import Payment
from library_service.payments import tasks
from tests.factories import (
    StripeDown,
    fetch,
    paid_notifications,
    task_ctx,
)


async def test_poll_marks_expired_session_expired(app, db, settings, sandbox, payment):
    sandbox.mark_expired(payment["session_id"])
    outcome = await tasks.poll_expired_sessions(task_ctx(app, db, settings))
    assert outcome["EXPIRED"] == 1
    assert outcome["PAID"] == 0
    row = await fetch(db, Payment, payment["id"])
    assert row.status == "EXPIRED"
    assert row.session_id == payment["session_id"]
    # Safe to run again.
    outcome = await tasks.poll_expired_sessions(task_ctx(app, db, settings))
    assert outcome["EXPIRED"] == 0
    assert (await fetch(db, Payment, payment["id"])).status == "EXPIRED"


async def test_poll_marks_paid_session_paid(app, db, settings, sandbox, payment):
    sandbox.mark_paid(payment["session_id"])  # paid, but neither redirect nor webhook came
    outcome = await tasks.poll_expired_sessions(task_ctx(app, db, settings))
    assert outcome["PAID"] == 1
    assert (await fetch(db, Payment, payment["id"])).status == "PAID"
    assert await paid_notifications(db) == 1
    await tasks.poll_expired_sessions(task_ctx(app, db, settings))
    assert await paid_notifications(db) == 1


async def test_poll_leaves_open_sessions_alone(app, db, settings, payment):
    outcome = await tasks.poll_expired_sessions(task_ctx(app, db, settings))
    assert outcome["open"] == 1
    assert outcome["EXPIRED"] == outcome["PAID"] == 0
    assert (await fetch(db, Payment, payment["id"])).status == "PENDING"


async def test_poll_with_stripe_down_changes_nothing(
    app, db, settings, sandbox, stripe_mock, payment
):
    sandbox.mark_expired(payment["session_id"])
    with StripeDown(stripe_mock):
        outcome = await tasks.poll_expired_sessions(task_ctx(app, db, settings))
    assert outcome["unreachable"] == 1
    assert (await fetch(db, Payment, payment["id"])).status == "PENDING"
