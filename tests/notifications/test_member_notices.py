"""Members are told: each notice is written with its event, e-mailed by the worker to a real
SMTP server (aiosmtpd), and listed in the app. Stripe is the sandbox behind respx."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from sqlalchemy import text

from library_service.borrowings.reminders import remind
from library_service.core.db import UnitOfWork
from library_service.dev.mailbox import Caught, Mailbox
from library_service.models import MemberNotice
from library_service.notifications.service import MemberInbox
from tests.factories import (
    PASSWORD,
    app_path,
    assert_can_login,
    day,
    deliver_notices,
    expire_holds,
    fetch,
    member_notices,
    on_day,
    pay,
    the_payment,
)

LINK = re.compile(r"https?://\S+")


def mails_to(mailbox: Mailbox, address: str) -> list[Caught]:
    return [m for m in mailbox.messages() if m.message["To"] == address]


def the_mail(mailbox: Mailbox, address: str) -> Caught:
    [mail] = mails_to(mailbox, address)
    return mail


def assert_mail_of(mail: Caught, notice: MemberNotice, *, to: str) -> None:
    """The e-mail says what the notice says, in both bodies, with the library's headers."""
    headers = mail.message
    assert headers["To"] == to
    assert headers["From"] == "Test Library <desk@library.example.com>"
    assert headers["Subject"] == notice.subject
    assert headers["Message-ID"] == f"<notice-{notice.id}@library.example.com>"
    assert notice.body in mail.text
    assert notice.subject in mail.html
    for label, value in notice.facts:
        assert f"{label}: {value}" in mail.text


def link_in(mail: Caught) -> str:
    [link] = LINK.findall(mail.text)
    assert f'href="{link.replace("&", "&amp;")}"' in mail.html
    return link


async def inbox(client, factory, member) -> list[dict[str, Any]]:
    response = await client.get("/api/notices/", headers=factory.auth(member))
    assert response.status_code == 200, response.text
    return response.json()["results"]


async def test_a_hold_ready_is_told_by_mail_and_in_the_app(
    client, factory, app, db, settings, mailbox
):
    member, staff = await factory.member(), await factory.staff()
    book = await factory.book(inventory=0, title="Emma", author="Jane Austen")
    hold = await factory.place_hold_ok(client, member, book, on=0)
    with on_day(0):
        response = await client.patch(
            f"/api/books/{book.id}/", json={"inventory": 1}, headers=factory.auth(staff)
        )
    assert response.status_code == 200, response.text

    [notice] = await member_notices(db, "hold_ready")
    assert notice.user_id == member.id and notice.status == "PENDING"
    assert ("Collect by", f"{day(3)}") in [tuple(f) for f in notice.facts]
    assert await deliver_notices(app, db, settings) == {notice.id: "sent"}
    assert (await fetch(db, MemberNotice, notice.id)).status == "SENT"

    mail = the_mail(mailbox, member.email)
    assert_mail_of(mail, notice, to=member.email)
    link = link_in(mail)
    assert link == f"http://testserver/api/books/{book.id}/"
    assert (await client.get(app_path(link))).json()["title"] == "Emma"

    [listed] = await inbox(client, factory, member)
    assert listed["id"] == notice.id and listed["kind"] == "hold_ready"
    assert listed["link"] == link and listed["email_status"] == "SENT"
    assert listed["read_at"] is None
    assert hold["id"]


async def test_a_hold_expired_and_one_cancelled_by_withdrawal_are_told(
    client, factory, app, db, settings, mailbox
):
    late, waiting, staff = await factory.member(), await factory.member(), await factory.staff()
    book = await factory.book(inventory=0, title="Emma")
    await factory.hold(late, book, status="READY", ready_until=day(3))
    await factory.hold(waiting, book)
    assert await expire_holds(app, db, settings, on=4) == 1
    [expired] = await member_notices(db, "hold_expired")
    assert expired.user_id == late.id
    [ready] = await member_notices(db, "hold_ready")  # the copy moved on to `waiting`
    assert ready.user_id == waiting.id

    with on_day(4):
        response = await client.patch(
            f"/api/books/{book.id}/", json={"withdrawn": True}, headers=factory.auth(staff)
        )
    assert response.status_code == 200, response.text
    [cancelled] = await member_notices(db, "hold_cancelled")
    assert cancelled.user_id == waiting.id

    await deliver_notices(app, db, settings)
    assert_mail_of(the_mail(mailbox, late.email), expired, to=late.email)
    assert [m.message["Subject"] for m in mails_to(mailbox, waiting.email)] == [
        ready.subject,
        cancelled.subject,
    ]
    assert "withdrawn" in mails_to(mailbox, waiting.email)[1].text
    # And in each member's app, newest first.
    assert [n["kind"] for n in await inbox(client, factory, late)] == ["hold_expired"]
    listed = await inbox(client, factory, waiting)
    assert [n["kind"] for n in listed] == ["hold_cancelled", "hold_ready"]
    assert {n["email_status"] for n in listed} == {"SENT"}


async def test_reminders_due_soon_today_and_overdue_are_sent_once_per_day(
    client, factory, app, db, settings, mailbox
):
    member = await factory.member()
    opted_out = await factory.member(email_reminders=False)
    book = await factory.book(title="Emma", daily_fee="1.00")
    due_soon = await factory.borrowing(member, book, borrowed=day(-5), due=day(2))
    due_today = await factory.borrowing(member, book, borrowed=day(-5), due=day(0))
    first_day_late = await factory.borrowing(member, book, borrowed=day(-9), due=day(-1))
    week_later = await factory.borrowing(member, book, borrowed=day(-20), due=day(-8))
    await factory.borrowing(member, book, borrowed=day(-20), due=day(-3))  # not today
    await factory.borrowing(member, book, borrowed=day(-5), due=day(1))  # not today
    await factory.borrowing(member, book, borrowed=day(-9), due=day(-1), returned=day(-1))
    quiet = await factory.borrowing(opted_out, book, borrowed=day(-5), due=day(0))

    uow = UnitOfWork(db, app.state.queue)
    with on_day(0):
        assert await remind(uow, settings, today=day(0), batch=2) == 5
        assert await remind(uow, settings, today=day(0), batch=2) == 0  # run twice: once

    notices = await member_notices(db)
    by_loan = {n.dedupe_key.split(":")[1]: n for n in notices}
    assert by_loan[str(due_soon.id)].kind == "due_soon"
    assert by_loan[str(due_today.id)].kind == "due_today"
    assert by_loan[str(first_day_late.id)].kind == "overdue"
    assert by_loan[str(week_later.id)].kind == "overdue"
    assert "fine so far is $16.00" in by_loan[str(week_later.id)].body  # 8 days, $1 a day, twice
    assert by_loan[str(quiet.id)].status == "SKIPPED"

    outcomes = await deliver_notices(app, db, settings)
    assert sorted(outcomes.values()) == ["sent"] * 4
    assert len(mails_to(mailbox, member.email)) == 4
    assert mails_to(mailbox, opted_out.email) == []  # opted out: no e-mail …
    [in_app] = await inbox(client, factory, opted_out)  # … but in the app
    assert in_app["kind"] == "due_today" and in_app["email_status"] == "SKIPPED"
    mail = next(m for m in mails_to(mailbox, member.email) if "overdue by 8 days" in m.text)
    assert_mail_of(mail, by_loan[str(week_later.id)], to=member.email)

    with on_day(1):  # the next day: due then (1), first day late (the two due on day 0)
        assert await remind(uow, settings, today=day(1), batch=100) == 3


async def test_a_fine_an_extension_and_a_receipt_carry_their_payment_links(
    client, browser, factory, app, db, settings, mailbox
):
    member, body = await factory.borrowed(client, days=4, title="Emma")
    fee = the_payment(body)
    paid = await pay(client, browser, fee["session_url"])
    assert paid.status_code == 200, paid.text
    [receipt] = await member_notices(db, "receipt")
    assert ("Amount", "$6.00") in [tuple(f) for f in receipt.facts]
    assert ("Paid by", "card (Stripe Checkout)") in [tuple(f) for f in receipt.facts]

    extended = await factory.extend(client, member, body["id"], day(6), on=1)
    assert extended.status_code == 200, extended.text
    [extension] = await member_notices(db, "extension")
    new_fee = next(p for p in extended.json()["payments"] if p["status"] == "PENDING")
    assert extension.link_path == new_fee["session_url"]

    returned = await factory.return_book(client, member, body["id"], on=8)
    assert returned.status_code == 200, returned.text
    fine_payment = the_payment(returned.json(), "FINE")
    [fine] = await member_notices(db, "fine")
    assert ("Fine", f"${fine_payment['money_to_pay']}") in [tuple(f) for f in fine.facts]

    await deliver_notices(app, db, settings)
    mails = {m.message["Subject"]: m for m in mails_to(mailbox, member.email)}
    for notice in (receipt, extension, fine):
        assert_mail_of(mails[notice.subject], notice, to=member.email)
    fine_link = link_in(mails[fine.subject])
    assert fine_link == fine_payment["session_url"]
    assert (await browser.get(fine_link)).status_code == 200  # Stripe's page opens
    assert link_in(mails[extension.subject]) == new_fee["session_url"]
    assert "Receipt" in mails[receipt.subject].message["Subject"]
    # And in the member's app, newest first, each with the link its e-mail has.
    listed = await inbox(client, factory, member)
    assert [n["kind"] for n in listed] == ["fine", "extension", "receipt"]
    assert listed[0]["link"] == fine_link
    assert listed[1]["link"] == new_fee["session_url"]


async def test_account_notices_welcome_password_changed_deactivated_reactivated(
    client, factory, app, db, settings, mailbox
):
    created = await client.post(
        "/api/users/", json={"email": "New.Reader@Example.com", "password": "password123"}
    )
    assert created.status_code == 201, created.text
    member_id = created.json()["id"]
    assert created.json()["email_reminders"] is True
    token = (
        await client.post(
            "/api/users/token/", json={"email": "new.reader@example.com", "password": "password123"}
        )
    ).json()["access"]
    me = {"Authorization": f"Bearer {token}"}
    changed = await client.patch("/api/users/me/", json={"password": "another-pass"}, headers=me)
    assert changed.status_code == 200, changed.text
    staff = await factory.staff()
    for active in (False, True):
        response = await client.patch(
            f"/api/users/{member_id}/", json={"is_active": active}, headers=factory.auth(staff)
        )
        assert response.status_code == 200, response.text

    kinds = [n.kind for n in await member_notices(db)]
    assert kinds == ["welcome", "password_changed", "account_deactivated", "account_reactivated"]
    await deliver_notices(app, db, settings)
    subjects = [m.message["Subject"] for m in mails_to(mailbox, "new.reader@example.com")]
    assert subjects == [
        "Welcome to Test Library",
        "Your password was changed",
        "Your library account was deactivated",
        "Your library account is active again",
    ]
    token = (
        await client.post(
            "/api/users/token/",
            json={"email": "new.reader@example.com", "password": "another-pass"},
        )
    ).json()["access"]
    listed = await client.get("/api/notices/", headers={"Authorization": f"Bearer {token}"})
    assert [n["kind"] for n in listed.json()["results"]] == list(reversed(kinds))


async def test_the_in_app_list_unread_count_and_marking_read(client, factory, db):
    member, other = await factory.member(), await factory.member()
    staff = await factory.staff()
    for active in (False, True, False, True):
        await client.patch(
            f"/api/users/{member.id}/", json={"is_active": active}, headers=factory.auth(staff)
        )
    await client.patch(
        f"/api/users/{other.id}/", json={"is_active": False}, headers=factory.auth(staff)
    )
    me = {"Authorization": f"Bearer {await assert_can_login(client, member.email, PASSWORD)}"}
    count = await client.get("/api/notices/unread-count/", headers=me)
    assert count.json() == {"unread": 4}
    notices = (await client.get("/api/notices/?limit=2", headers=me)).json()
    assert notices["count"] == 4 and len(notices["results"]) == 2
    newest = notices["results"][0]["id"]
    assert notices["results"][1]["id"] < newest

    read = await client.post(f"/api/notices/{newest}/read/", headers=me)
    assert read.status_code == 200 and read.json()["read_at"] is not None
    again = await client.post(f"/api/notices/{newest}/read/", headers=me)
    assert again.json()["read_at"] == read.json()["read_at"]  # read once
    unread = (await client.get("/api/notices/?unread=true", headers=me)).json()
    assert [n["id"] for n in unread["results"]] == [newest - 1, newest - 2, newest - 3]
    assert (await client.get("/api/notices/unread-count/", headers=me)).json() == {"unread": 3}

    [others] = [n for n in await member_notices(db) if n.user_id == other.id]
    refused = await client.post(f"/api/notices/{others.id}/read/", headers=me)
    assert refused.status_code == 404 and refused.json()["code"] == "notice_not_found"

    marked = await client.post("/api/notices/read-all/", headers=me)
    assert marked.json() == {"marked": 3}
    assert (await client.get("/api/notices/unread-count/", headers=me)).json() == {"unread": 0}
    assert (await client.get("/api/notices/unread-count/")).status_code == 401


async def test_a_member_opts_out_of_reminder_emails(client, factory):
    member = await factory.member()
    response = await client.patch(
        "/api/users/me/", json={"email_reminders": False}, headers=factory.auth(member)
    )
    assert response.status_code == 200 and response.json()["email_reminders"] is False
    refused = await client.patch(
        "/api/users/me/", json={"email_reminders": None}, headers=factory.auth(member)
    )
    assert refused.status_code == 422
    # A full update (PUT) that leaves the choice out keeps it, as it keeps the password.
    profile = {"email": member.email, "first_name": "Ada", "last_name": "Lovelace"}
    kept = await client.put("/api/users/me/", json=profile, headers=factory.auth(member))
    assert kept.status_code == 200 and kept.json()["email_reminders"] is False
    back = profile | {"email_reminders": True}
    again = await client.put("/api/users/me/", json=back, headers=factory.auth(member))
    assert again.status_code == 200 and again.json()["email_reminders"] is True


async def test_smtp_refusals_down_and_back_up(client, factory, app, db, settings, mailbox):
    staff = await factory.staff()
    gone = await factory.member(email="gone@example.com")
    busy = await factory.member(email="busy@example.com")
    fine = await factory.member(email="fine@example.com")
    for member in (gone, busy, fine):
        await client.patch(
            f"/api/users/{member.id}/", json={"is_active": False}, headers=factory.auth(staff)
        )
    mailbox.refuse.add("gone@example.com")
    mailbox.defer.add("busy@example.com")
    notice_of = {n.user_id: n.id for n in await member_notices(db)}

    outcomes = await deliver_notices(app, db, settings)
    assert outcomes == {
        notice_of[gone.id]: "failed",  # 550: refused for good, with the reason
        notice_of[busy.id]: "retry",  # 451: tried again later
        notice_of[fine.id]: "sent",
    }
    failed = await fetch(db, MemberNotice, notice_of[gone.id])
    assert failed.status == "FAILED" and "550" in (failed.last_error or "")
    deferred = await fetch(db, MemberNotice, notice_of[busy.id])
    assert deferred.status == "PENDING" and deferred.attempts == 1
    assert "451" in (deferred.last_error or "")

    mailbox.defer.clear()
    mailbox.stop()  # the SMTP server goes down
    assert await deliver_notices(app, db, settings) == {notice_of[busy.id]: "retry"}
    assert (await fetch(db, MemberNotice, notice_of[busy.id])).status == "PENDING"
    mailbox.start()  # and comes back: nothing was lost
    assert await deliver_notices(app, db, settings) == {notice_of[busy.id]: "sent"}
    assert [m.message["To"] for m in mailbox.messages()] == [
        "fine@example.com",
        "busy@example.com",
    ]

    # Staff send the failed one again, once the address works.
    mailbox.refuse.clear()
    staff = await factory.staff()
    inbox = MemberInbox(UnitOfWork(db, app.state.queue))
    await inbox.send_again(notice_of[gone.id], staff_id=staff.id)
    assert await deliver_notices(app, db, settings) == {notice_of[gone.id]: "sent"}
    assert mails_to(mailbox, "gone@example.com")


async def test_a_notice_past_the_give_up_age_fails_on_a_temporary_refusal(
    client, factory, app, db, settings, mailbox
):
    staff, member = await factory.staff(), await factory.member(email="busy@example.com")
    await client.patch(
        f"/api/users/{member.id}/", json={"is_active": False}, headers=factory.auth(staff)
    )
    [notice] = await member_notices(db)
    hours = settings.NOTIFY_GIVE_UP_HOURS
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            text(f"UPDATE member_notices SET created_at = now() - interval '{hours + 1} hours'")
        )
    mailbox.defer.add("busy@example.com")  # 451: would be tried again, but it is too late
    assert await deliver_notices(app, db, settings) == {notice.id: "failed"}
    failed = await fetch(db, MemberNotice, notice.id)
    assert failed.status == "FAILED" and "451" in (failed.last_error or "")
    assert mails_to(mailbox, "busy@example.com") == []


async def test_without_an_smtp_server_a_notice_says_it_was_not_emailed(
    client, factory, app, db, settings, mailbox
):
    member = await factory.member()
    await client.post("/api/users/password-reset/", json={"email": member.email})
    [notice] = await member_notices(db)
    assert notice.secret is not None  # the link's token, sealed until the e-mail is out

    no_smtp = settings.model_copy(update={"SMTP_HOST": ""})
    assert await deliver_notices(app, db, no_smtp) == {notice.id: "not e-mailed"}
    skipped = await fetch(db, MemberNotice, notice.id)
    assert (skipped.status, skipped.last_error) == ("SKIPPED", "not e-mailed: SMTP_HOST is not set")
    assert skipped.secret is None
    assert mailbox.messages() == []
    listed = await client.get("/api/notices/", headers=factory.auth(member))
    assert [n["email_status"] for n in listed.json()["results"]] == ["SKIPPED"]


async def test_the_reminder_rule_in_python_and_sql_agree(factory, db, settings):
    from sqlalchemy import select

    from library_service.borrowings import rules
    from library_service.models import Borrowing

    member, book = await factory.member(), await factory.book()
    loans = [
        await factory.borrowing(member, book, borrowed=day(-40), due=day(offset))
        for offset in range(-30, 6)
    ]
    loans.append(
        await factory.borrowing(member, book, borrowed=day(-9), due=day(0), returned=day(0))
    )
    clause = rules.reminder_clause(today=day(0), settings=settings)
    async with db.sessionmaker() as session:
        in_sql = set((await session.scalars(select(Borrowing.id).where(clause))).all())
    in_python = {
        loan.id
        for loan in loans
        if rules.reminder_kind(loan, today=day(0), settings=settings) is not None
    }
    assert in_sql == in_python
    assert {(loan.expected_return_date - day(0)).days for loan in loans if loan.id in in_sql} == {
        2,
        0,
        -1,
        -8,
        -15,
        -22,
        -29,
    }


async def test_a_sweep_queues_one_delivery_job_per_batch(app, db, settings, factory, mailbox):
    from library_service.notifications.mailer import Mailer
    from library_service.notifications.tasks import deliver_member_notices
    from tests.factories import task_ctx

    member, book = await factory.member(), await factory.book()
    for _ in range(3):
        await factory.borrowing(member, book, borrowed=day(-5), due=day(0))
    queue = app.state.queue
    await queue.flushdb()
    with on_day(0):
        assert await remind(UnitOfWork(db, queue), settings, today=day(0)) == 3
    assert len(await queue.queued_jobs()) == 1
    ids = [n.id for n in await member_notices(db)]
    mailer = Mailer(settings)
    ctx = {**task_ctx(app, db, settings), "mailer": mailer}
    assert await deliver_member_notices(ctx, ids) == 3
    assert await deliver_member_notices(ctx, ids) == 0  # run again: nothing sent twice
    await mailer.close()
    assert len(mailbox.messages()) == 3
    assert len(set(mailbox.peers)) == 1  # over one connection, kept between the e-mails


async def test_a_kept_connection_is_not_used_once_closed_or_idle_too_long(
    settings, mailbox, monkeypatch
):
    from library_service.notifications import mailer as mail

    def message(to: str) -> mail.EmailMessage:
        email = mail.Email(1, to, "Hello", "Body", [], None, None)
        return mail.render(email, settings)

    mailer = mail.Mailer(settings)
    await mailer.send(message("a@example.com"))
    mailbox.stop()  # the server goes away, and with it the connection kept
    mailbox.start()
    await asyncio.sleep(0.2)  # the closed connection is noticed while idle, as in the worker
    await mailer.send(message("b@example.com"))  # on a new connection, not the dead one
    monkeypatch.setattr(mail, "IDLE_SECONDS", 0.0)  # kept too long: a new one again
    await mailer.send(message("c@example.com"))
    await mailer.close()
    assert [m.message["To"] for m in mailbox.messages()] == [
        "a@example.com",
        "b@example.com",
        "c@example.com",
    ]
    assert len(set(mailbox.peers)) == 3


@pytest.mark.parametrize("to", ["reader@example.com", "łukasz@example.com"])
def test_an_email_reads_back_with_its_headers_and_both_bodies(settings, to):
    """ASCII addresses get the classic, cheaper message; others the one SMTPUTF8 needs."""
    import email as email_package
    from email.message import EmailMessage

    from library_service.notifications import mailer as mail

    subject = "Zaległa książka: Pan Tadeusz — proszę o zwrot"
    notice = mail.Email(7, to, subject, "Treść żółwia", [["Kwota", "3,00 zł"]], "http://x/y", None)
    message = mail.render(notice, settings)
    assert isinstance(message, EmailMessage) == (not to.isascii())
    policy = email_package.policy
    raw = message.as_bytes(policy=policy.SMTPUTF8 if not to.isascii() else policy.compat32)
    parsed = email_package.message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == subject
    assert parsed["To"] == to
    assert parsed["From"].addresses[0].display_name == settings.LIBRARY_NAME
    assert parsed["Message-ID"] == mail.message_id(7, settings)
    assert parsed["Auto-Submitted"] == "auto-generated"
    text = parsed.get_body(preferencelist=("plain",)).get_content()
    html = parsed.get_body(preferencelist=("html",)).get_content()
    assert "Treść żółwia" in text and "3,00 zł" in text and "http://x/y" in text
    assert "Treść żółwia" in html and 'href="http://x/y"' in html
