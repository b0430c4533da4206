"""The staff admin over HTTP: its session cookie, the login limit it shares with the API,
CSRF and Origin checks, session expiry, and refusals shown as sentences (never a 500)."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select
from starlette.middleware.sessions import SessionMiddleware

from library_service.admin.auth import SESSION_COOKIE, SESSION_IDLE_SECONDS, SESSION_MAX_SECONDS
from library_service.core import clock
from library_service.core.config import Settings
from library_service.main import create_app
from library_service.models import Book, Notification
from tests.admin.conftest import STAFF_EMAIL, STAFF_PASSWORD, csrf_token, http_sign_in


async def test_the_session_cookie_is_signed_httponly_lax_and_expires(admin_http, staff):
    response = await http_sign_in(admin_http, STAFF_EMAIL, STAFF_PASSWORD)
    assert response.status_code == 303, response.text
    cookie = next(
        value
        for name, value in response.headers.multi_items()
        if name == "set-cookie" and value.startswith(f"{SESSION_COOKIE}=")
    ).lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/admin" in cookie
    assert f"max-age={SESSION_IDLE_SECONDS}" in cookie
    assert "secure" not in cookie  # not in production: the test server speaks plain HTTP
    desk = await admin_http.get("/admin/")
    assert desk.status_code == 200
    assert "Signed in as desk@library.test" in desk.text

    tampered = httpx.Cookies()
    value = admin_http.cookies[SESSION_COOKIE]
    tampered.set(SESSION_COOKIE, value[:-4] + "AAAA", path="/admin")
    admin_http.cookies = tampered
    assert (await admin_http.get("/admin/")).status_code == 303


def test_the_session_cookie_is_secure_in_production(settings):
    production = Settings(
        _env_file=None,  # type: ignore[call-arg]
        ENVIRONMENT="production",
        SECRET_KEY="x" * 48,
        DATABASE_URL=settings.DATABASE_URL,
        REDIS_URL=settings.REDIS_URL,
        STRIPE_SECRET_KEY="sk_live_example",
        STRIPE_WEBHOOK_SECRET="whsec_example",
        PUBLIC_BASE_URL="https://library.example.com",
    )
    app = create_app(production, configure_logs=False)
    [admin] = [route for route in app.routes if getattr(route, "path", "") == "/admin"]
    [session] = [m for m in admin.app.user_middleware if m.cls is SessionMiddleware]
    assert session.kwargs["https_only"] is True
    assert session.kwargs["same_site"] == "lax"


async def test_the_session_ends_after_its_maximum_age(admin_http, staff):
    await http_sign_in(admin_http, STAFF_EMAIL, STAFF_PASSWORD)
    assert (await admin_http.get("/admin/")).status_code == 200
    with clock.frozen(clock.now() + timedelta(seconds=SESSION_MAX_SECONDS + 1)):
        response = await admin_http.get("/admin/")
    assert response.status_code == 303
    assert "/admin/login" in response.headers["location"]


async def test_a_password_change_ends_the_admin_session(admin_http, staff, client, factory):
    await http_sign_in(admin_http, STAFF_EMAIL, STAFF_PASSWORD)
    changed = await client.patch(
        "/api/users/me/", json={"password": "another-password-2"}, headers=factory.auth(staff)
    )
    assert changed.status_code == 200, changed.text
    assert (await admin_http.get("/admin/books/list")).status_code == 303


async def test_admin_sign_ins_share_the_api_login_limit(admin_http, client, staff, settings):
    for _ in range(settings.LOGIN_RATE_LIMIT):
        failed = await client.post(
            "/api/users/token/", json={"email": STAFF_EMAIL, "password": "wrong-password"}
        )
        assert failed.status_code == 401
    response = await http_sign_in(admin_http, STAFF_EMAIL, STAFF_PASSWORD)
    assert response.status_code == 400
    assert "Too many failed sign-ins; try again in" in response.text
    assert (await admin_http.get("/admin/")).status_code == 303


async def test_state_changing_posts_need_the_csrf_token_and_the_own_origin(admin_http, staff, rows):
    await http_sign_in(admin_http, STAFF_EMAIL, STAFF_PASSWORD)
    message_id = await rows.failed_message()
    url = f"/admin/_api/messages/row-action?name=send_again&pk={message_id}"
    token = csrf_token((await admin_http.get("/admin/messages/list")).text)

    missing = await admin_http.post(url)
    assert (missing.status_code, missing.text) == (403, "CSRF token missing")
    forged = await admin_http.post(url, headers={"X-CSRFToken": "forged"})
    assert (forged.status_code, forged.text) == (403, "CSRF token invalid")
    elsewhere = await admin_http.post(
        url, headers={"X-CSRFToken": token, "Origin": "https://evil.example"}
    )
    assert elsewhere.status_code == 403
    assert "Cross-site request refused" in elsewhere.text
    assert (await rows.get(Notification, message_id)).status == "FAILED"

    sent = await admin_http.post(url, headers={"X-CSRFToken": token, "Origin": "http://testserver"})
    assert sent.status_code == 200, sent.text
    assert (await rows.get(Notification, message_id)).status == "PENDING"


async def test_the_sign_in_form_needs_its_csrf_token_too(admin_http, staff):
    await admin_http.get("/admin/login")
    response = await admin_http.post(
        "/admin/login", data={"username": STAFF_EMAIL, "password": STAFF_PASSWORD}
    )
    assert response.status_code == 403
    assert (await admin_http.get("/admin/")).status_code == 303


async def test_a_message_that_is_not_failed_is_not_sent_again(admin_http, staff, rows, db):
    await http_sign_in(admin_http, STAFF_EMAIL, STAFF_PASSWORD)
    message_id = await rows.failed_message()
    token = csrf_token((await admin_http.get("/admin/messages/list")).text)
    url = f"/admin/_api/messages/row-action?name=send_again&pk={message_id}"
    assert (await admin_http.post(url, headers={"X-CSRFToken": token})).status_code == 200
    # Pressed twice (two tabs): the second is refused with a sentence, nothing changes.
    again = await admin_http.post(url, headers={"X-CSRFToken": token})
    assert again.status_code == 400
    assert again.json()["msg"] == (
        "This no longer applies: the row changed meanwhile. Reload the page."
    )
    assert (await rows.get(Notification, message_id)).attempts == 0


async def test_refusals_on_forms_are_shown_beside_the_field(admin_http, staff, factory):
    await factory.book(isbn="9780141439518", title="Pride and Prejudice")
    await http_sign_in(admin_http, STAFF_EMAIL, STAFF_PASSWORD)
    form = await admin_http.get("/admin/books/create")
    response = await admin_http.post(
        "/admin/books/create",
        data={
            "csrftoken": csrf_token(form.text),
            "title": "Another",
            "author": "Someone",
            "isbn": "978-0-14-143951-8",
            "cover": "HARD",
            "inventory": "1",
            "daily_fee": "1.00",
        },
    )
    assert response.status_code == 422
    assert "Another book already has this ISBN." in response.text


async def test_normal_admin_use_logs_info_not_warnings(admin_http, staff, caplog):
    """A sign-in redirect and a form that failed validation are a person's doing, not an
    operator's warning."""
    with caplog.at_level(logging.INFO):
        assert (await admin_http.get("/admin/books/list")).status_code == 303
        await http_sign_in(admin_http, STAFF_EMAIL, STAFF_PASSWORD)
        form = await admin_http.get("/admin/books/create")
        invalid = await admin_http.post(
            "/admin/books/create",
            data={"csrftoken": csrf_token(form.text), "title": "", "cover": "HARD"},
        )
        assert invalid.status_code == 422
    admin_records = [r for r in caplog.records if r.name.startswith("starlette_admin")]
    assert [r for r in admin_records if r.levelno >= logging.WARNING] == []
    assert any("redirecting to login" in r.getMessage() for r in admin_records)


async def test_editing_a_book_leaves_copies_taken_meanwhile_alone(admin_http, staff, factory, db):
    book = await factory.book(inventory=5)
    await http_sign_in(admin_http, STAFF_EMAIL, STAFF_PASSWORD)
    form = await admin_http.get(f"/admin/books/edit?pk={book.id}")
    assert 'name="_inventory_shown" value="5"' in form.text
    async with db.sessionmaker() as session, session.begin():  # a loan while the form is open
        (await session.get(Book, book.id)).inventory = 4
    response = await admin_http.post(
        f"/admin/books/edit?pk={book.id}",
        data={
            "csrftoken": csrf_token(form.text),
            "_inventory_shown": "5",
            "title": "Pride and Prejudice",
            "author": "Jane Austen",
            "cover": "SOFT",
            "inventory": "5",
            "daily_fee": "2.50",
        },
    )
    assert response.status_code == 303, response.text
    async with db.sessionmaker() as session:
        fresh = await session.get(Book, book.id)
        assert (fresh.inventory, fresh.daily_fee) == (4, Decimal("2.50"))


@pytest.mark.parametrize(
    "path",
    [
        "/admin/borrowings/create",
        "/admin/payments/create",
        "/admin/messages/create",
        "/admin/member-notices/create",
        "/admin/borrowings/edit?pk=1",
        "/admin/payments/edit?pk=1",
        "/admin/messages/edit?pk=1",
        "/admin/member-notices/edit?pk=1",
    ],
)
async def test_no_form_edits_borrowings_payments_or_messages(admin_http, staff, path):
    await http_sign_in(admin_http, STAFF_EMAIL, STAFF_PASSWORD)
    token = csrf_token((await admin_http.get("/admin/")).text)
    assert (await admin_http.get(path)).status_code == 403
    assert (await admin_http.post(path, data={"csrftoken": token})).status_code == 403


async def test_nothing_can_be_imported(admin_http, staff, db):
    await http_sign_in(admin_http, STAFF_EMAIL, STAFF_PASSWORD)
    token = csrf_token((await admin_http.get("/admin/books/list")).text)
    response = await admin_http.post(
        "/admin/books/import",
        data={"csrftoken": token},
        files={"file": ("books.csv", b"title,author,cover,inventory,daily_fee\nA,B,HARD,1,1.00\n")},
    )
    assert response.status_code in {403, 404, 405}
    async with db.sessionmaker() as session:
        assert (await session.execute(select(Book))).first() is None


def test_the_local_run_banner_prints_the_admin_url(settings, capsys):
    from library_service.dev import local

    local.print_banner(settings, host="0.0.0.0", port=8000, demo_accounts=[])  # noqa: S104
    assert "Admin    http://127.0.0.1:8000/admin/" in capsys.readouterr().out


async def test_new_member_enrols_one_who_is_emailed_a_password_link(
    admin_http, staff, db, app, settings, mailbox
):
    from tests.factories import deliver_notices, member_notices

    await http_sign_in(admin_http, STAFF_EMAIL, STAFF_PASSWORD)
    form = await admin_http.get("/admin/members/create")
    assert form.status_code == 200
    response = await admin_http.post(
        "/admin/members/create",
        data={
            "csrftoken": csrf_token(form.text),
            "email": "Walk.In@Example.com",
            "first_name": "Ada",
        },
    )
    assert response.status_code == 303, response.text
    [welcome] = await member_notices(db, "welcome")
    assert welcome.to_address == "walk.in@example.com"
    await deliver_notices(app, db, settings)
    [mail] = mailbox.messages()
    assert "password-reset/page/?token=" in mail.text

    taken = await admin_http.post(
        "/admin/members/create",
        data={"csrftoken": csrf_token(form.text), "email": "walk.in@example.com"},
    )
    assert taken.status_code == 422 and "already exists" in taken.text
