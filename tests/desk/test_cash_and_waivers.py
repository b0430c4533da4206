"""Cash at the desk and waivers: Stripe's session is expired first, a payment is settled
exactly once whatever else confirms or settles it at the same moment, and what is refused
changes nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from library_service.core import clock
from library_service.models import Borrowing, Payment, User
from library_service.payments import tasks
from library_service.users.schemas import AuthUser
from tests.desk.conftest import take_cash, waive
from tests.factories import (
    StripeDown,
    app_path,
    assert_error,
    audit_entries,
    deliver_notices,
    fetch,
    member_notices,
    open_sessions,
    paid_notifications,
    pay,
    post_event,
    snapshot,
    task_ctx,
    the_payment,
)


async def test_cash_marks_the_payment_paid_by_the_staff_member_and_ends_its_link(
    client, factory, db, sandbox, staff, payment
):
    response = await take_cash(client, factory, staff, payment["id"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["method"], body["recorded_by"]) == ("PAID", "cash", staff.id)
    assert body["paid_at"] is not None
    assert sandbox.sessions[payment["session_id"]]["status"] == "expired"
    assert open_sessions(sandbox) == []
    assert await paid_notifications(db) == 1
    [entry] = await audit_entries(db)
    assert (entry.actor_id, entry.action, entry.target_type, entry.target_id) == (
        staff.id,
        "payment.cash",
        "payment",
        payment["id"],
    )
    assert entry.changes == {"status": ["PENDING", "PAID"], "method": [None, "cash"]}
    assert entry.member_id is not None and entry.book_id is not None


async def test_cash_for_an_expired_payment(client, factory, db, sandbox, staff, payment, app):
    sandbox.mark_expired(payment["session_id"])
    await tasks.poll_expired_sessions(task_ctx(app, db, factory.settings))
    assert (await fetch(db, Payment, payment["id"])).status == "EXPIRED"
    response = await take_cash(client, factory, staff, payment["id"])
    assert response.status_code == 200, response.text
    assert (await fetch(db, Payment, payment["id"])).method == "cash"


async def test_only_staff_take_cash_or_waive(client, factory, db, sandbox, payment):
    member = await factory.member()
    before = await snapshot(db, sandbox)
    assert_error(await take_cash(client, factory, member, payment["id"]), 403, "permission_denied")
    assert_error(await waive(client, factory, member, payment["id"]), 403, "permission_denied")
    assert await snapshot(db, sandbox) == before
    anonymous = await client.post(f"/api/payments/{payment['id']}/cash/")
    assert_error(anonymous, 401, "not_authenticated")


async def test_an_unknown_payment_is_not_found(client, factory, staff):
    assert_error(await take_cash(client, factory, staff, 999), 404, "payment_not_found")
    assert_error(await waive(client, factory, staff, 999), 404, "payment_not_found")


async def test_a_session_already_paid_at_stripe_is_marked_paid_by_card_and_cash_refused(
    client, factory, db, sandbox, staff, payment
):
    sandbox.mark_paid(payment["session_id"])  # paid on the member's phone a moment ago
    assert_error(
        await take_cash(client, factory, staff, payment["id"]), 400, "payment_already_paid"
    )
    row = await fetch(db, Payment, payment["id"])
    assert (row.status, row.method, row.recorded_by) == ("PAID", "card", None)
    assert await paid_notifications(db) == 1
    assert await audit_entries(db) == []
    assert_error(await waive(client, factory, staff, payment["id"]), 400, "payment_already_paid")


async def test_paid_and_waived_payments_are_final(client, factory, db, sandbox, staff, payment):
    assert (await take_cash(client, factory, staff, payment["id"])).status_code == 200
    before = await snapshot(db, sandbox)
    assert_error(
        await take_cash(client, factory, staff, payment["id"]), 400, "payment_already_paid"
    )
    assert_error(await waive(client, factory, staff, payment["id"]), 400, "payment_already_paid")
    assert await snapshot(db, sandbox) == before

    _, borrowing = await factory.borrowed(client)
    other = the_payment(borrowing)
    assert (await waive(client, factory, staff, other["id"])).status_code == 200
    assert_error(await take_cash(client, factory, staff, other["id"]), 400, "payment_waived")
    assert_error(await waive(client, factory, staff, other["id"]), 400, "payment_waived")
    member_renews = await factory.renew(client, await fetch_member(db, other["id"]), other["id"])
    assert_error(member_renews, 400, "payment_waived")
    assert len(await audit_entries(db)) == 2


async def test_a_desk_retry_with_its_key_gets_the_first_answer(
    client, factory, db, sandbox, staff, payment
):
    """The answer to "Paid in cash" or "Waive" lost on the way: pressed again with the same
    Idempotency-Key, the desk gets the first answer, not a refusal, and nothing happens twice."""
    first = await take_cash(client, factory, staff, payment["id"], key="cash-1")
    again = await take_cash(client, factory, staff, payment["id"], key="cash-1")
    assert first.status_code == again.status_code == 200, first.text
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert_error(  # a new key is a new request
        await take_cash(client, factory, staff, payment["id"], key="cash-2"),
        400,
        "payment_already_paid",
    )

    _, borrowing = await factory.borrowed(client)
    other = the_payment(borrowing)
    first = await waive(client, factory, staff, other["id"], "Flooded", key="waive-1")
    again = await waive(client, factory, staff, other["id"], "Flooded", key="waive-1")
    assert first.status_code == again.status_code == 200, first.text
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other_reason = await waive(client, factory, staff, other["id"], "Burnt", key="waive-1")
    assert other_reason.status_code == 422  # the same key with another body
    assert [entry.action for entry in await audit_entries(db)] == [
        "payment.cash",
        "payment.waive",
    ]
    assert await paid_notifications(db) == 1


async def fetch_member(db, payment_id: int) -> User:
    payment = await fetch(db, Payment, payment_id)
    borrowing = await fetch(db, Borrowing, payment.borrowing_id)
    return await fetch(db, User, borrowing.user_id)


async def test_stripe_down_refuses_cash_and_changes_nothing(
    client, factory, db, sandbox, staff, payment, stripe_mock
):
    before = await snapshot(db, sandbox)
    with StripeDown(stripe_mock):
        response = await take_cash(client, factory, staff, payment["id"])
    assert_error(response, 503, "payment_provider_unavailable")
    assert await snapshot(db, sandbox) == before
    assert await audit_entries(db) == []


async def test_a_waiver_needs_a_reason_of_1_to_500_characters(
    client, factory, db, sandbox, staff, payment
):
    before = await snapshot(db, sandbox)
    for reason in (None, "", "   ", "x" * 501):
        response = await waive(client, factory, staff, payment["id"], reason=reason)
        assert_error(response, 400, "waiver_reason_required")
    assert await snapshot(db, sandbox) == before
    assert sandbox.sessions[payment["session_id"]]["status"] == "open"

    response = await waive(client, factory, staff, payment["id"], reason="  x" * 166 + " ")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["method"], body["recorded_by"]) == ("WAIVED", "waived", staff.id)
    assert body["paid_at"] is None
    assert sandbox.sessions[payment["session_id"]]["status"] == "expired"
    [entry] = await audit_entries(db, "payment.waive")
    assert entry.reason == ("  x" * 166).strip()
    assert entry.changes == {"status": ["PENDING", "WAIVED"], "method": [None, "waived"]}
    assert await paid_notifications(db) == 0


async def test_a_waived_fine_no_longer_blocks_borrowing(client, factory, db, staff):
    member = await factory.member()
    late = await factory.overdue_borrowing(member, await factory.book(), days_late=2)
    returned = await factory.return_book(client, member, late.id, on=0)
    fine = the_payment(returned.json(), "FINE")
    book = await factory.book()
    assert_error(await factory.borrow(client, member, book, on=0), 400, "unpaid_fines")
    assert (await waive(client, factory, staff, fine["id"], reason="First time")).status_code == 200
    assert (await factory.borrow(client, member, book, on=0)).status_code == 201
    payments = await client.get("/api/payments/?status=WAIVED", headers=factory.auth(member))
    assert [p["id"] for p in payments.json()["results"]] == [fine["id"]]


# --- races ---------------------------------------------------------------------------------


async def _paid_once(db, payment_id: int) -> Payment:
    row = await fetch(db, Payment, payment_id)
    assert row.status == "PAID"
    assert await paid_notifications(db) == 1
    return row


async def test_cash_racing_the_success_redirect_of_a_paid_session(
    client, browser, factory, db, sandbox, staff, payment
):
    redirect = await browser.post(payment["session_url"] + "/pay")
    path = app_path(redirect.headers["location"])
    cash, back = await asyncio.gather(
        take_cash(client, factory, staff, payment["id"]), client.get(path)
    )
    assert back.status_code == 200, back.text
    assert_error(cash, 400, "payment_already_paid")
    assert (await _paid_once(db, payment["id"])).method == "card"
    assert await audit_entries(db) == []


async def test_cash_racing_the_webhook_of_a_paid_session(
    client, browser, factory, db, sandbox, staff, payment
):
    await browser.post(payment["session_url"] + "/pay")
    payload, header = sandbox.signed_event(
        "checkout.session.completed", sandbox.sessions[payment["session_id"]]
    )
    cash, hook = await asyncio.gather(
        take_cash(client, factory, staff, payment["id"]), post_event(client, payload, header)
    )
    assert hook.status_code == 200, hook.text
    assert_error(cash, 400, "payment_already_paid")
    assert (await _paid_once(db, payment["id"])).method == "card"


async def test_cash_racing_the_expiry_poll(client, factory, db, sandbox, staff, payment, app):
    """The poll may see the session the desk just expired, and mark the payment EXPIRED
    first: the cash is taken all the same, once."""
    ctx = task_ctx(app, db, factory.settings)
    cash, _ = await asyncio.gather(
        take_cash(client, factory, staff, payment["id"]), tasks.poll_expired_sessions(ctx)
    )
    assert cash.status_code == 200, cash.text
    assert (await _paid_once(db, payment["id"])).method == "cash"
    await tasks.poll_expired_sessions(ctx)
    assert (await fetch(db, Payment, payment["id"])).status == "PAID"


async def test_cash_racing_the_poll_of_a_session_paid_meanwhile(
    client, factory, db, sandbox, staff, payment, app
):
    sandbox.mark_paid(payment["session_id"])
    ctx = task_ctx(app, db, factory.settings)
    cash, _ = await asyncio.gather(
        take_cash(client, factory, staff, payment["id"]), tasks.poll_expired_sessions(ctx)
    )
    assert_error(cash, 400, "payment_already_paid")
    assert (await _paid_once(db, payment["id"])).method == "card"


async def test_two_staff_pressing_paid_in_cash_at_once(client, factory, db, staff, payment):
    colleague = await factory.staff()
    responses = await asyncio.gather(
        take_cash(client, factory, staff, payment["id"]),
        take_cash(client, factory, colleague, payment["id"]),
    )
    assert sorted(r.status_code for r in responses) == [200, 400], [r.text for r in responses]
    refused = next(r for r in responses if r.status_code == 400)
    assert_error(refused, 400, "payment_already_paid")
    await _paid_once(db, payment["id"])
    assert len(await audit_entries(db, "payment.cash")) == 1


async def test_waive_racing_cash_and_another_waiver(client, factory, db, staff, payment):
    colleague = await factory.staff()
    responses = await asyncio.gather(
        waive(client, factory, staff, payment["id"]),
        take_cash(client, factory, colleague, payment["id"]),
        waive(client, factory, colleague, payment["id"], reason="Their first loan"),
    )
    assert sorted(r.status_code for r in responses) == [200, 400, 400], [r.text for r in responses]
    row = await fetch(db, Payment, payment["id"])
    expected_code = "payment_waived" if row.status == "WAIVED" else "payment_already_paid"
    for refused in (r for r in responses if r.status_code == 400):
        assert_error(refused, 400, expected_code)
    assert len(await audit_entries(db)) == 1
    assert await paid_notifications(db) == (1 if row.status == "PAID" else 0)


async def test_cash_racing_the_members_renewal_leaves_nothing_payable(
    client, factory, db, sandbox, staff, payment
):
    member = await fetch_member(db, payment["id"])
    sandbox.mark_expired(payment["session_id"])
    cash, renewal = await asyncio.gather(
        take_cash(client, factory, staff, payment["id"]),
        factory.renew(client, member, payment["id"]),
    )
    row = await fetch(db, Payment, payment["id"])
    if cash.status_code == 200:
        # The desk settled it: either first (the renewal is refused and its new session
        # abandoned), or once the renewal had finished (the desk expired the new session).
        assert row.status == "PAID"
        assert open_sessions(sandbox) == []
        assert renewal.status_code in (200, 400, 409), renewal.text
    else:  # the renewal came first: the desk is told to reload, the new link stands
        assert_error(cash, 409, "payment_changed")
        assert renewal.status_code == 200
        assert row.status == "PENDING"
        assert open_sessions(sandbox) == [row.session_id]


async def test_a_waiver_of_a_fine_recorded_without_a_session(
    client, factory, db, staff, stripe_mock
):
    member = await factory.member()
    late = await factory.overdue_borrowing(member, await factory.book(), days_late=1)
    with StripeDown(stripe_mock):
        returned = await factory.return_book(client, member, late.id, on=0)
    fine = the_payment(returned.json(), "FINE")
    assert fine["session_id"] is None
    response = await waive(client, factory, staff, fine["id"], reason="Stripe was down")
    assert response.status_code == 200, response.text
    assert (await fetch(db, Payment, fine["id"])).status == "WAIVED"


async def test_a_waived_payments_link_tells_the_member_there_is_nothing_to_pay(
    client, factory, staff, payment
):
    assert (await waive(client, factory, staff, payment["id"])).status_code == 200
    page = await client.get(
        f"/api/payments/cancel/?session_id={payment['session_id']}",
        headers={"Accept": "text/html"},
    )
    assert page.status_code == 200
    assert "The library waived this payment" in page.text


async def test_cash_sends_the_member_a_receipt_saying_how_it_was_paid(
    client, factory, app, db, settings, staff, payment, mailbox
):
    assert (await take_cash(client, factory, staff, payment["id"])).status_code == 200
    [receipt] = await member_notices(db, "receipt")
    facts = dict(tuple(fact) for fact in receipt.facts)
    assert facts["Paid by"] == "cash, at the desk"
    assert facts["Amount"] == f"${payment['money_to_pay']}"
    await deliver_notices(app, db, settings)
    [mail] = [m for m in mailbox.messages() if m.message["Subject"] == receipt.subject]
    assert "cash, at the desk" in mail.message.get_body(("plain",)).get_content()


async def test_a_waiver_sends_no_receipt(client, factory, db, staff, payment):
    assert (await waive(client, factory, staff, payment["id"], "a regular")).status_code == 200
    assert await member_notices(db, "receipt") == []


async def test_the_desk_e_mails_the_payment_link(app, db, settings, staff, payment, mailbox):
    services = app.state.services
    payments = services.payments(services.unit_of_work())
    desk = AuthUser(id=staff.id, email=staff.email, is_staff=True)
    sent = await payments.send_payment_link(payment["id"], desk)
    assert sent.session_url == payment["session_url"]
    [notice] = await member_notices(db, "payment_link")
    assert notice.link_path == payment["session_url"]
    await deliver_notices(app, db, settings)
    [mail] = [m for m in mailbox.messages() if m.message["Subject"] == notice.subject]
    assert payment["session_url"] in mail.message.get_body(("plain",)).get_content()


# -- what was collected, and what was waived, apart ------------------------------------------


async def test_totals_report_card_and_cash_collected_apart_from_what_was_waived(
    client, browser, factory, settings, staff
):
    fees = [the_payment((await factory.borrowed(client))[1]) for _ in range(4)]
    assert (await pay(client, browser, fees[0]["session_url"])).status_code == 200
    assert (await take_cash(client, factory, staff, fees[1]["id"])).status_code == 200
    assert (await waive(client, factory, staff, fees[2]["id"])).status_code == 200
    # fees[3] stays unpaid: in no total.
    card, cash, waived = (Decimal(fee["money_to_pay"]) for fee in fees[:3])

    today = clock.today(settings.timezone)
    response = await client.get("/api/payments/totals/", headers=factory.auth(staff))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "since": str(today),
        "until": str(today),
        "card": {"count": 1, "amount": str(card)},
        "cash": {"count": 1, "amount": str(cash)},
        "collected": {"count": 2, "amount": str(card + cash)},
        "waived": {"count": 1, "amount": str(waived)},
    }
    week = {"since": str(today - timedelta(days=6)), "until": str(today)}
    over_a_week = await client.get(
        "/api/payments/totals/", params=week, headers=factory.auth(staff)
    )
    assert over_a_week.json() | week == response.json() | week

    yesterday = str(today - timedelta(days=1))
    before = await client.get(
        "/api/payments/totals/", params={"until": yesterday}, headers=factory.auth(staff)
    )
    assert before.json()["since"] == before.json()["until"] == yesterday
    nothing = {"count": 0, "amount": "0.00"}
    assert [before.json()[k] for k in ("card", "cash", "collected", "waived")] == [nothing] * 4


async def test_totals_are_for_staff_over_a_valid_range(client, factory, staff):
    member = await factory.member()
    refused = await client.get("/api/payments/totals/", headers=factory.auth(member))
    assert_error(refused, 403, "permission_denied")
    backwards = {"since": "2026-12-02", "until": "2026-12-01"}
    assert_error(
        await client.get("/api/payments/totals/", params=backwards, headers=factory.auth(staff)),
        400,
        "invalid_date_range",
    )
