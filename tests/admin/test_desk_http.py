"""The desk's pages over HTTP: the defects a librarian met in the browser, fixed; the
Check-out page's refusals; exports by name and of every matching row."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from library_service.admin.views.activity import ACTION_LABELS, TARGET_VIEWS
from library_service.core import clock
from library_service.core.audit import AuditAction, AuditTarget
from library_service.models import Borrowing, MemberNotice, Notification
from tests.admin.conftest import STAFF_EMAIL, STAFF_PASSWORD, csrf_token, http_sign_in
from tests.factories import audit_entries


async def test_save_and_add_another_on_a_member_opens_the_new_member_form(
    admin_http, staff, factory
):
    """It used to lead to a 403 page: members could not be created in the admin. Now it
    opens the New member form, which enrols one."""
    member = await factory.user()
    await http_sign_in(admin_http, STAFF_EMAIL, STAFF_PASSWORD)
    form = await admin_http.get(f"/admin/members/edit?pk={member.id}")
    assert form.status_code == 200
    assert "Save and add another" in form.text
    new_member = await admin_http.get("/admin/members/create")
    assert new_member.status_code == 200
    assert 'name="email"' in new_member.text


async def test_the_book_form_speaks_plainly_and_starts_with_a_cover(admin_http, staff):
    await http_sign_in(admin_http, STAFF_EMAIL, STAFF_PASSWORD)
    form = await admin_http.get("/admin/books/create")
    assert re.search(r'<option value="HARD"\s+selected>', form.text)
    # Title, author, cover, copies and daily fee are marked required.
    assert len(re.findall(r'<label class="form-label required"', form.text)) == 5
    response = await admin_http.post(
        "/admin/books/create",
        data={
            "csrftoken": csrf_token(form.text),
            "title": "Emma",
            "author": "Jane Austen",
            "isbn": "12345",
            "cover": "HARD",
            "inventory": "1",
            "daily_fee": "1.00",
        },
    )
    assert response.status_code == 422
    assert re.findall(r"invalid-feedback[^>]*>([^<]*)<", response.text) == [
        "ISBN must be a valid ISBN-10 or ISBN-13 (check digit included)"
    ]


async def test_members_are_found_by_full_name(admin_http, staff, factory, client):
    await factory.user(email="rita@example.com", first_name="Rita", last_name="Reader")
    await factory.user(email="rob@example.com", first_name="Rob", last_name="Reader")
    await http_sign_in(admin_http, STAFF_EMAIL, STAFF_PASSWORD)
    page = await admin_http.get("/admin/members/list?q=Rita%20Reader")
    assert page.status_code == 200, page.text
    assert "rita@example.com" in page.text
    assert "rob@example.com" not in page.text
    api = await client.get("/api/users/?search=rita reader", headers=factory.auth(staff))
    assert [u["email"] for u in api.json()["results"]] == ["rita@example.com"]


async def test_exports_name_members_and_books_and_hold_every_matching_row(
    admin_http, staff, factory, rows
):
    member = await factory.user(email="ada@example.com")
    for n in range(30):
        await rows.borrowing(
            member, await factory.book(title=f"Book {n}"), days_ago=1, due_days_ago=-5
        )
    await http_sign_in(admin_http, STAFF_EMAIL, STAFF_PASSWORD)
    token = csrf_token((await admin_http.get("/admin/borrowings/list")).text)
    response = await admin_http.post(
        "/admin/_api/borrowings/action?name=export",
        data={
            "csrftoken": token,
            "scope": "all",
            "format": "csv",
            "fields": ["id", "user", "book"],
        },
    )
    assert response.status_code == 200, response.text
    exported = list(csv.DictReader(io.StringIO(response.text)))
    assert len(exported) == 30
    assert {row["Member"] for row in exported} == {"ada@example.com"}
    assert "«Book 0»" in {row["Book"] for row in exported}


async def test_copies_added_to_a_waiting_queue_are_said_so(admin_http, staff, factory):
    book = await factory.book(inventory=0)
    await factory.hold(await factory.user(), book)
    await http_sign_in(admin_http, STAFF_EMAIL, STAFF_PASSWORD)
    form = await admin_http.get(f"/admin/books/edit?pk={book.id}")
    response = await admin_http.post(
        f"/admin/books/edit?pk={book.id}",
        data={
            "csrftoken": csrf_token(form.text),
            "_inventory_shown": "0",
            "title": book.title,
            "author": book.author,
            "cover": "SOFT",
            "inventory": "2",
            "daily_fee": "1.50",
        },
        follow_redirects=True,
    )
    assert "1 of the copies added went to members waiting" in response.text


async def test_the_check_out_page_refuses_with_the_rules_sentence(admin_http, staff, factory, rows):
    gone = await factory.user(email="gone@example.com", is_active=False)
    book = await factory.book(title="Emma")
    await http_sign_in(admin_http, STAFF_EMAIL, STAFF_PASSWORD)
    page = await admin_http.get("/admin/checkout?member_q=gone&book_q=Emma")
    assert "deactivated" in page.text
    response = await admin_http.post(
        "/admin/checkout/lend",
        data={
            "csrftoken": csrf_token(page.text),
            "user": str(gone.id),
            "book": str(book.id),
            "due": (clock.today(factory.settings.timezone) + timedelta(days=7)).isoformat(),
        },
    )
    assert response.status_code == 400
    assert "deactivated: nothing can be lent" in response.text
    nothing = await admin_http.post(
        "/admin/checkout/lend", data={"csrftoken": csrf_token(page.text), "user": str(gone.id)}
    )
    assert nothing.status_code == 400
    assert "Pick a member, a book and a due date." in nothing.text
    assert await rows.all(select(Borrowing)) == []


async def test_staff_messages_show_what_they_are_about(admin_http, staff, rows):
    await rows.failed_message()
    await http_sign_in(admin_http, STAFF_EMAIL, STAFF_PASSWORD)
    page = await admin_http.get("/admin/messages/list")
    assert "New borrowing" in page.text
    assert "borrowing_created" not in page.text


async def test_a_member_notice_sent_again_is_on_record(admin_http, staff, rows, factory, db):
    member = await factory.member()
    notice_id = await rows.failed_notice(member)
    await http_sign_in(admin_http, STAFF_EMAIL, STAFF_PASSWORD)
    token = csrf_token((await admin_http.get("/admin/member-notices/list")).text)
    url = f"/admin/_api/member-notices/row-action?name=send_again&pk={notice_id}"
    assert (await admin_http.post(url, headers={"X-CSRFToken": token})).status_code == 200
    assert (await rows.get(MemberNotice, notice_id)).status == "PENDING"
    [entry] = await audit_entries(db)
    assert (entry.actor_id, entry.action, entry.target_type, entry.target_id) == (
        staff.id,
        "notice.send_again",
        "notice",
        notice_id,
    )
    assert entry.member_id == member.id  # on the member's page too
    assert entry.changes == {"status": ["FAILED", "PENDING"]}
    activity = await admin_http.get("/admin/activity/list")
    assert activity.status_code == 200 and "E-mail sent again" in activity.text
    member_page = await admin_http.get(f"/admin/members/detail?pk={member.id}")
    assert member_page.status_code == 200, member_page.text


def test_every_audit_action_and_target_has_its_place_in_the_activity_view():
    assert set(ACTION_LABELS) == set(AuditAction)  # a choice it lacks fails the whole list
    assert set(TARGET_VIEWS) == {target.value for target in AuditTarget}


@pytest.mark.parametrize(
    ("view", "model", "action"),
    [
        ("messages", Notification, "message.send_again"),
        ("member-notices", MemberNotice, "notice.send_again"),
    ],
)
async def test_a_selection_of_failed_ones_is_sent_again(
    admin_http, staff, rows, factory, db, view, model, action
):
    member = await factory.member()
    if view == "messages":
        failed = [await rows.failed_message(), await rows.failed_message()]
    else:
        failed = [await rows.failed_notice(member), await rows.failed_notice(member)]
    await http_sign_in(admin_http, STAFF_EMAIL, STAFF_PASSWORD)
    token = csrf_token((await admin_http.get(f"/admin/{view}/list")).text)
    pks = "&".join(f"pks={pk}" for pk in failed)
    url = f"/admin/_api/{view}/action?name=send_again_selected&{pks}"
    response = await admin_http.post(url, headers={"X-CSRFToken": token})
    assert response.status_code == 200, response.text
    assert [(await rows.get(model, pk)).status for pk in failed] == ["PENDING", "PENDING"]
    entries = await audit_entries(db)
    assert sorted((entry.action, entry.target_id) for entry in entries) == [
        (action, pk) for pk in failed
    ]

    # Pressed again: both are PENDING now, and each refusal is named.
    response = await admin_http.post(url, headers={"X-CSRFToken": token})
    assert response.status_code == 400
    assert all(f"#{pk}" in response.text for pk in failed)
    assert len(await audit_entries(db)) == 2


async def test_a_message_sent_again_is_on_record(admin_http, staff, rows, db):
    message_id = await rows.failed_message()
    await http_sign_in(admin_http, STAFF_EMAIL, STAFF_PASSWORD)
    token = csrf_token((await admin_http.get("/admin/messages/list")).text)
    url = f"/admin/_api/messages/row-action?name=send_again&pk={message_id}"
    assert (await admin_http.post(url, headers={"X-CSRFToken": token})).status_code == 200
    [entry] = await audit_entries(db)
    assert (entry.actor_id, entry.action, entry.target_id) == (
        staff.id,
        "message.send_again",
        message_id,
    )
