"""Fixtures for the admin's tests: a staff account, rows to work on, and signing in (in the
browser, whose fixtures are tests/browser/fixtures.py, or over HTTP with the form's CSRF
token)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlalchemy import insert

from library_service.core import clock
from library_service.models import Borrowing, MemberNotice, Notification, Payment, User

STAFF_EMAIL = "desk@library.test"
STAFF_PASSWORD = "desk-password-1"
MEMBER_PASSWORD = "password123"
CSRF_FIELD = re.compile(r'name="csrftoken" value="([^"]+)"')


@pytest.fixture
async def staff(factory) -> User:
    return await factory.user(is_staff=True, email=STAFF_EMAIL, password=STAFF_PASSWORD)


@pytest.fixture
def admin_url(live_server, stripe_mock) -> str:
    """The admin as the browser reaches it; Stripe is faked for the server's calls."""
    return f"{live_server.public_url}/admin"


async def sign_in(page: Page, admin_url: str, email: str, password: str) -> None:
    await page.goto(f"{admin_url}/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password", exact=True).fill(password)
    await page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def signed_in(page, admin_url, staff) -> Callable[[], Awaitable[Page]]:
    async def go() -> Page:
        await sign_in(page, admin_url, STAFF_EMAIL, STAFF_PASSWORD)
        await expect(page.get_by_role("heading", name="Desk", exact=True)).to_be_visible()
        return page

    return go


async def http_sign_in(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    """Sign in through the form as a browser does: GET it (CSRF cookie and token), POST it."""
    form = await http.get("/admin/login")
    token = csrf_token(form.text)
    return await http.post(
        "/admin/login", data={"username": email, "password": password, "csrftoken": token}
    )


def csrf_token(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match is not None, "the page has no CSRF token"
    return match.group(1)


@pytest.fixture
async def admin_http(app, stripe_mock) -> Any:
    """An HTTP client of the suite's app, for the admin's pages."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


class Rows:
    """Borrowings and messages made straight in the database."""

    def __init__(self, db, settings) -> None:
        self.db = db
        self.settings = settings

    async def borrowing(
        self,
        user: User,
        book: Any,
        *,
        days_ago: int,
        due_days_ago: int,
        fee: str = "1.00",
        returned: bool = False,
    ) -> Borrowing:
        today = clock.today(self.settings.timezone)
        async with self.db.sessionmaker() as session, session.begin():
            borrowing = Borrowing(
                borrow_date=today - timedelta(days=days_ago),
                expected_return_date=today - timedelta(days=due_days_ago),
                actual_return_date=today if returned else None,
                book_id=book.id,
                user_id=user.id,
                payments=[
                    Payment(
                        type="PAYMENT",
                        status="PAID",
                        money_to_pay=Decimal(fee),
                        session_id=f"cs_test_paid_{book.id}_{user.id}_{days_ago}",
                    )
                ],
            )
            session.add(borrowing)
        return borrowing

    async def failed_message(self, text: str = "New borrowing #9 of «Emma»") -> int:
        async with self.db.sessionmaker() as session, session.begin():
            statement = (
                insert(Notification)
                .values(
                    kind="borrowing_created",
                    text=text,
                    status="FAILED",
                    attempts=8,
                    last_error="Telegram answered 403: bot was kicked from the group chat",
                )
                .returning(Notification.id)
            )
            return int((await session.execute(statement)).scalar_one())

    async def failed_notice(self, member: User) -> int:
        """A hold-ready e-mail to `member` the mail server refused for good."""
        async with self.db.sessionmaker() as session, session.begin():
            statement = (
                insert(MemberNotice)
                .values(
                    user_id=member.id,
                    kind="hold_ready",
                    subject="Your hold is ready",
                    body="«Emma» is put aside for you.",
                    to_address=member.email,
                    status="FAILED",
                    attempts=1,
                    last_error="550 no such mailbox",
                )
                .returning(MemberNotice.id)
            )
            return int((await session.execute(statement)).scalar_one())

    async def get(self, model: Any, row_id: int) -> Any:
        async with self.db.sessionmaker() as session:
            return await session.get(model, row_id)

    async def all(self, statement: Any) -> list[Any]:
        async with self.db.sessionmaker() as session:
            return list((await session.execute(statement)).scalars())


@pytest.fixture
def rows(db, settings) -> Rows:
    return Rows(db, settings)
