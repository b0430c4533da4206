"""Getting back in: a single-use, hashed, time-limited link to choose a new password, asked
for by the member or sent at desk enrolment; e-mailed through the outbox to a real SMTP
server, and followed on the API's own page or through the confirm endpoint."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from urllib.parse import unquote

from library_service.core import clock
from library_service.models import PasswordToken
from tests.factories import (
    assert_can_login,
    assert_cannot_login,
    assert_error,
    count,
    deliver_notices,
    member_notices,
)

LINK = re.compile(r"https?://\S+token=(\S+)")


async def request_reset(client, email: str, ip: str = "127.0.0.1"):
    return await client.post("/api/users/password-reset/", json={"email": email})


async def emailed_token(app, db, settings, mailbox, email: str) -> str:
    """Deliver what is pending and read the token from the newest e-mail to `email`."""
    await deliver_notices(app, db, settings)
    mail = [m for m in mailbox.messages() if m.message["To"] == email][-1]
    text = mail.message.get_body(preferencelist=("plain",)).get_content()
    [token] = LINK.findall(text)
    return unquote(token)


async def confirm(client, token: str, password: str):
    return await client.post(
        "/api/users/password-reset/confirm/", json={"token": token, "password": password}
    )


async def test_a_reset_sets_the_password_once_and_ends_earlier_tokens(
    client, factory, app, db, settings, mailbox
):
    member = await factory.member(email="reader@example.com")
    old_access = factory.auth(member)
    known = await request_reset(client, "Reader@Example.com")
    unknown = await request_reset(client, "nobody@example.com")
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()  # nothing tells who is a member

    first = await emailed_token(app, db, settings, mailbox, "reader@example.com")
    assert [m.message["To"] for m in mailbox.messages()] == ["reader@example.com"]
    [stored] = await _tokens(db)
    assert stored.token_hash == hashlib.sha256(first.encode()).hexdigest()
    assert first not in str(stored.__dict__)  # only its hash is kept
    [notice] = await member_notices(db, "password_reset")
    assert notice.secret is None  # erased once sent: the token is in the e-mail only

    await request_reset(client, "reader@example.com")
    second = await emailed_token(app, db, settings, mailbox, "reader@example.com")
    assert second != first

    page = await client.get(f"/api/users/password-reset/page/?token={second}")
    assert page.status_code == 200 and 'name="password"' in page.text  # the link works

    done = await confirm(client, second, "brand-new-password")
    assert done.status_code == 200, done.text
    await assert_can_login(client, "reader@example.com", "brand-new-password")
    await assert_cannot_login(client, "reader@example.com", "password123")
    me = await client.get("/api/users/me/", headers=old_access)
    assert_error(me, 401, "token_not_valid")  # tokens issued before end

    assert_error(await confirm(client, second, "again-password"), 400, "reset_token_used")
    assert_error(await confirm(client, first, "again-password"), 400, "reset_token_used")
    assert_error(await confirm(client, "not-a-token", "again-password"), 400, "reset_token_invalid")
    kinds = [n.kind for n in await member_notices(db)]
    assert kinds == ["password_reset", "password_reset", "password_changed"]


async def test_an_expired_link_is_refused(client, factory, app, db, settings, mailbox):
    await factory.member(email="reader@example.com")
    await request_reset(client, "reader@example.com")
    token = await emailed_token(app, db, settings, mailbox, "reader@example.com")
    later = clock.now() + timedelta(minutes=settings.PASSWORD_RESET_MINUTES, seconds=1)
    with clock.frozen(later):
        assert_error(await confirm(client, token, "brand-new-password"), 400, "reset_token_expired")
        page = await client.get(f"/api/users/password-reset/page/?token={token}")
    assert page.status_code == 400 and "expired" in page.text
    await assert_can_login(client, "reader@example.com", "password123")


async def test_resets_are_limited_per_address_and_email(client, factory, db, settings):
    await factory.member(email="reader@example.com")
    answers = [(await request_reset(client, "reader@example.com")).status_code for _ in range(15)]
    assert answers == [202] * settings.LOGIN_RATE_LIMIT + [429] * (15 - settings.LOGIN_RATE_LIMIT)
    # The same address asking for other accounts: up to its own, higher limit.
    room = settings.LOGIN_RATE_LIMIT_PER_ADDRESS - settings.LOGIN_RATE_LIMIT
    others = [(await request_reset(client, f"other{n}@example.com")) for n in range(room + 1)]
    assert [answer.status_code for answer in others] == [202] * room + [429]
    assert_error(others[-1], 429, "rate_limited")
    assert "Retry-After" in others[-1].headers
    assert await count(db, PasswordToken) == settings.LOGIN_RATE_LIMIT  # no mail flood


async def test_bad_input_changes_nothing(client, factory, db):
    malformed = await client.post("/api/users/password-reset/", json={"email": "not an address"})
    assert malformed.status_code == 422
    short = await confirm(client, "token", "short")
    assert short.status_code == 422
    assert await count(db, PasswordToken) == 0


async def test_a_deactivated_account_gets_no_link(client, factory, db, mailbox):
    await factory.member(email="gone@example.com", is_active=False)
    assert (await request_reset(client, "gone@example.com")).status_code == 202
    assert await count(db, PasswordToken) == 0


async def test_staff_enrol_a_member_who_chooses_a_password_on_the_page(
    client, factory, app, db, settings, mailbox
):
    staff = await factory.staff()
    refused = await client.post("/api/users/", json={"email": "walk.in@example.com"})
    assert_error(refused, 400, "password_required")  # only staff enrol without a password
    enrolled = await client.post(
        "/api/users/",
        json={"email": "walk.in@example.com", "first_name": "Ada"},
        headers=factory.auth(staff),
    )
    assert enrolled.status_code == 201, enrolled.text
    [token_row] = await _tokens(db)
    assert token_row.purpose == "welcome"
    assert token_row.expires_at - token_row.created_at >= timedelta(days=7) - timedelta(seconds=5)

    token = await emailed_token(app, db, settings, mailbox, "walk.in@example.com")
    [mail] = mailbox.messages()
    assert mail.message["Subject"] == "Welcome to Test Library: choose your password"
    assert "Hello Ada" in mail.message.get_body(preferencelist=("plain",)).get_content()

    differ = await client.post(
        "/api/users/password-reset/page/",
        data={"token": token, "password": "walk-in-pass", "again": "walk-in-pasS"},
    )
    assert differ.status_code == 400 and "differ" in differ.text
    done = await client.post(
        "/api/users/password-reset/page/",
        data={"token": token, "password": "walk-in-pass", "again": "walk-in-pass"},
    )
    assert done.status_code == 200 and "Your password is set" in done.text
    await assert_can_login(client, "walk.in@example.com", "walk-in-pass")
    reused = await client.post(
        "/api/users/password-reset/page/",
        data={"token": token, "password": "walk-in-pass", "again": "walk-in-pass"},
    )
    assert reused.status_code == 400 and "used already" in reused.text


async def _tokens(db) -> list[PasswordToken]:
    from sqlalchemy import select

    async with db.sessionmaker() as session:
        return list((await session.scalars(select(PasswordToken))).all())
