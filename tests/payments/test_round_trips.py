"""Round trips to PostgreSQL for Stripe's confirmations: the webhook, and the success
redirect that follows it (see the Performance section of the README). A change that adds
one should be a deliberate one."""

from __future__ import annotations

from tests.factories import post_event, round_trips, the_payment


async def test_webhook_and_success_redirect_round_trips(client, factory, sandbox):
    member = await factory.member()
    book = await factory.book(inventory=3)
    borrowing = await factory.borrow_ok(client, member, book, days=4, on=0)
    session_id = the_payment(borrowing)["session_id"]
    payload, header = sandbox.signed_event(
        "checkout.session.completed", sandbox.mark_paid(session_id)
    )

    with round_trips() as sent:
        assert (await post_event(client, payload, header)).status_code == 200
    assert sent == [
        "BEGIN",
        # the event recorded, and the payment marked PAID only if the event is new, in one
        # statement, returning what the staff message says
        "INSERT stripe_events + UPDATE payments",
        "INSERT notifications",
        "INSERT member_notices",  # the member's receipt
        "COMMIT",
    ]

    with round_trips() as sent:
        response = await client.get(f"/api/payments/success/?session_id={session_id}")
    assert response.status_code == 200, response.text
    assert sent == ["SELECT payments"]  # already PAID by the webhook
