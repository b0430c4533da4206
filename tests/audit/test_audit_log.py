"""The record of staff actions: one row per change, in its transaction; append-only in the
database; read by staff through GET /api/audit/ with filters and pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from library_service.core import clock
from tests.factories import BOOK_FIELDS, assert_error, audit_entries


async def _staff_changes(client, factory, staff) -> tuple[int, int]:
    """A book created, edited, withdrawn; a member deactivated: four rows."""
    headers = factory.auth(staff)
    book = (await client.post("/api/books/", json=BOOK_FIELDS, headers=headers)).json()
    await client.patch(f"/api/books/{book['id']}/", json={"daily_fee": "2.00"}, headers=headers)
    await client.patch(f"/api/books/{book['id']}/", json={"withdrawn": True}, headers=headers)
    member = await factory.member()
    await client.patch(f"/api/users/{member.id}/", json={"is_active": False}, headers=headers)
    return book["id"], member.id


async def test_each_staff_change_is_recorded_with_before_and_after(client, factory, db):
    staff = await factory.staff()
    book_id, member_id = await _staff_changes(client, factory, staff)
    entries = await audit_entries(db)
    assert [(e.action, e.target_type, e.target_id) for e in entries] == [
        ("book.create", "book", book_id),
        ("book.update", "book", book_id),
        ("book.withdraw", "book", book_id),
        ("member.deactivate", "member", member_id),
    ]
    assert entries[0].changes["title"] == [None, "Emma"]
    assert entries[1].changes == {"daily_fee": ["1.50", "2.00"]}
    assert entries[2].changes == {"withdrawn": [False, True]}
    assert entries[3].changes == {"is_active": [True, False]}
    assert {e.actor_id for e in entries} == {staff.id}


async def test_every_other_change_to_members_and_books_is_recorded(client, factory, db):
    """Access given and taken, names, a book deleted: each its own action, with its fields."""
    staff = await factory.staff()
    headers = factory.auth(staff)
    member = await factory.member(first_name="Ada")
    for change in (
        {"is_active": False},
        {"is_active": True},
        {"is_staff": True},
        {"is_staff": False},
        {"first_name": "Augusta"},
        {"first_name": "Augusta"},  # nothing changed: no row
    ):
        response = await client.patch(f"/api/users/{member.id}/", json=change, headers=headers)
        assert response.status_code == 200, response.text
    book = (await client.post("/api/books/", json=BOOK_FIELDS, headers=headers)).json()
    deleted = await client.delete(f"/api/books/{book['id']}/", headers=headers)
    assert deleted.status_code == 204, deleted.text

    entries = await audit_entries(db)
    assert [(e.action, e.target_id, e.changes) for e in entries if e.target_type == "member"] == [
        ("member.deactivate", member.id, {"is_active": [True, False]}),
        ("member.activate", member.id, {"is_active": [False, True]}),
        ("member.grant_staff", member.id, {"is_staff": [False, True]}),
        ("member.revoke_staff", member.id, {"is_staff": [True, False]}),
        ("member.update", member.id, {"first_name": ["Ada", "Augusta"]}),
    ]
    [removed] = [e for e in entries if e.action == "book.delete"]
    assert (removed.target_id, removed.book_id) == (book["id"], book["id"])
    assert removed.changes["title"] == ["Emma", None]  # what the book was, for the record
    assert {e.actor_id for e in entries} == {staff.id}


async def test_a_refused_change_leaves_no_row(client, factory, db):
    staff = await factory.staff()
    response = await client.patch(
        f"/api/users/{staff.id}/", json={"is_active": False}, headers=factory.auth(staff)
    )
    assert_error(response, 400, "cannot_change_own_access")
    assert await audit_entries(db) == []


async def test_the_database_refuses_to_change_or_delete_a_row(client, factory, db):
    staff = await factory.staff()
    await _staff_changes(client, factory, staff)
    for statement in ("UPDATE audit_log SET reason = 'rewritten'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.engine.begin() as connection:
                await connection.execute(text(statement))
    assert len(await audit_entries(db)) == 4


async def test_staff_read_the_record_with_filters_and_pages(client, factory, db):
    staff, colleague = await factory.staff(), await factory.staff()
    book_id, member_id = await _staff_changes(client, factory, staff)
    await client.patch(
        f"/api/books/{book_id}/", json={"withdrawn": False}, headers=factory.auth(colleague)
    )
    headers = factory.auth(staff)

    async def ids(query: str) -> list[tuple[str, int]]:
        response = await client.get(f"/api/audit/?{query}", headers=headers)
        assert response.status_code == 200, response.text
        return [(e["action"], e["target_id"]) for e in response.json()["results"]]

    everything = await client.get("/api/audit/?limit=2", headers=headers)
    page = everything.json()
    assert page["count"] == 5
    assert [e["action"] for e in page["results"]] == ["book.reinstate", "member.deactivate"]
    assert page["next"] and page["previous"] is None
    assert page["results"][0]["actor_email"] == colleague.email
    assert await ids(f"actor_id={colleague.id}") == [("book.reinstate", book_id)]
    assert await ids("action=book.withdraw") == [("book.withdraw", book_id)]
    assert await ids(f"target_type=member&target_id={member_id}") == [
        ("member.deactivate", member_id)
    ]
    assert len(await ids(f"book_id={book_id}")) == 4
    today = clock.today(factory.settings.timezone)
    assert len(await ids(f"since={today}&until={today}")) == 5
    assert await ids(f"since={today + timedelta(days=1)}") == []
    assert await ids(f"until={today - timedelta(days=1)}") == []

    refused = await client.get(
        f"/api/audit/?since={today}&until={today - timedelta(days=1)}", headers=headers
    )
    assert_error(refused, 400, "invalid_date_range")
    member = await factory.member()
    assert_error(
        await client.get("/api/audit/", headers=factory.auth(member)), 403, "permission_denied"
    )
    assert (await client.get("/api/audit/?action=nonsense", headers=headers)).status_code == 422


async def test_holds_cancelled_and_links_renewed_for_a_member_are_recorded(
    client, factory, db, sandbox, frozen_today
):
    staff, member = await factory.staff(), await factory.member()
    book = await factory.book(inventory=0)
    hold = await factory.hold(member, book)
    cancelled = await client.post(f"/api/holds/{hold.id}/cancel/", headers=factory.auth(staff))
    assert cancelled.status_code == 200, cancelled.text
    _, borrowing = await factory.borrowed(client, member=member)
    fee = borrowing["payments"][0]
    sandbox.mark_expired(fee["session_id"])
    renewed = await factory.renew(client, staff, fee["id"])
    assert renewed.status_code == 200, renewed.text
    entries = await audit_entries(db)
    assert [(e.action, e.target_id, e.member_id) for e in entries] == [
        ("hold.cancel", hold.id, member.id),
        ("payment.renew", fee["id"], member.id),
    ]
    assert entries[0].changes == {"status": ["WAITING", "CANCELLED"]}
    # The member's own cancellations and renewals are not staff actions.
    own = await factory.hold(member, await factory.book(inventory=0))
    await client.post(f"/api/holds/{own.id}/cancel/", headers=factory.auth(member))
    assert len(await audit_entries(db)) == 2
