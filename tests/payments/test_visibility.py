"""Reading payments: members see their own, staff see all and filter."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from library_service.models import Payment
from tests.factories import (
    assert_error,
    fetch,
    pay,
    the_payment,
)


async def visibility_setup(client: httpx.AsyncClient, browser: Any, factory: Any) -> Any:
    """alice: one paid PAYMENT; bob: a PENDING PAYMENT and a PENDING FINE."""
    alice = await factory.member()
    bob = await factory.member()
    staff = await factory.staff()
    book = await factory.book(inventory=5)
    a = the_payment(await factory.borrow_ok(client, alice, book, on=0))
    assert (await pay(client, browser, a["session_url"])).status_code == 200
    b_borrowing = await factory.borrow_ok(client, bob, book, days=2, on=0)
    returned = await factory.return_book(client, bob, b_borrowing["id"], on=3)
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
    assert_error(other, 404, "payment_not_found")
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
    response = await factory.renew(client, alice, b_fine["id"])
    assert_error(response, 404, "payment_not_found")
    row = await fetch(db, Payment, b_fine["id"])
    assert row.session_id == b_fine["session_id"]
    assert len(sandbox.sessions) == before
    # Its owner can.
    response = await factory.renew(client, bob, b_fine["id"])
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
