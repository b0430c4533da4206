"""The staff admin in a real browser (headless Chromium): signing in, the catalogue, members,
a late return with its fine, a failed staff message sent again, and forged requests refused."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.async_api import expect
from sqlalchemy import select, update

from library_service.models import Book, Borrowing, Notification, Payment, User
from tests.admin.conftest import MEMBER_PASSWORD, STAFF_EMAIL, STAFF_PASSWORD, sign_in

ALERT = ".alert"


# --- signing in ----------------------------------------------------------------------------


async def test_anonymous_visitors_go_to_the_sign_in_page(page, admin_url):
    await page.goto(f"{admin_url}/books/list")
    assert page.url.startswith(f"{admin_url}/login?next=")
    await expect(page.get_by_role("heading", name="Library desk: staff sign-in")).to_be_visible()


async def test_staff_sign_in_see_the_desk_and_sign_out(page, admin_url, staff, factory, rows):
    member = await factory.user()
    book = await factory.book()
    await rows.borrowing(member, book, days_ago=20, due_days_ago=6)
    await rows.failed_message()

    await sign_in(page, admin_url, STAFF_EMAIL, STAFF_PASSWORD)
    await expect(page.get_by_role("heading", name="Desk", exact=True)).to_be_visible()
    await expect(page.locator("#loans-out .h1")).to_have_text("1")
    await expect(page.locator("#overdue-loans .h1")).to_have_text("1")
    await expect(page.locator("#failed-messages .h1")).to_have_text("1")
    await expect(page.get_by_text(f"Signed in as {STAFF_EMAIL}")).to_be_visible()

    await page.locator(".avatar >> visible=true").click()
    await page.get_by_role("button", name="Logout").locator("visible=true").click()
    await page.goto(f"{admin_url}/")
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()


async def test_a_wrong_password_is_refused(page, admin_url, staff):
    await sign_in(page, admin_url, STAFF_EMAIL, "not-the-password")
    await expect(page.locator(ALERT)).to_contain_text(
        "No active account found with the given credentials."
    )
    await page.goto(f"{admin_url}/")
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()


async def test_a_member_and_a_deactivated_account_are_refused_with_the_reason(
    page, admin_url, factory
):
    member = await factory.user(email="reader@library.test")
    await sign_in(page, admin_url, member.email, MEMBER_PASSWORD)
    await expect(page.locator(ALERT)).to_contain_text("Only library staff may sign in here")

    gone = await factory.user(email="gone@library.test", is_staff=True, is_active=False)
    await sign_in(page, admin_url, gone.email, MEMBER_PASSWORD)
    await expect(page.locator(ALERT)).to_contain_text("This account has been deactivated")
    await page.goto(f"{admin_url}/members/list")
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()


async def test_staff_demoted_meanwhile_lose_the_admin_at_their_next_request(
    signed_in, admin_url, db, staff
):
    page = await signed_in()
    await page.goto(f"{admin_url}/books/list")
    await expect(page.get_by_role("heading", name="Books", exact=True)).to_be_visible()
    async with db.sessionmaker() as session, session.begin():
        await session.execute(update(User).where(User.id == staff.id).values(is_staff=False))
    await page.goto(f"{admin_url}/books/list")
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()


# --- books ---------------------------------------------------------------------------------


# The page, its tables and their cells that are wider than their box (they scroll sideways).
OVERFLOWING = """
[document.documentElement, ...document.querySelectorAll("table, table *, .table-responsive")]
  .filter((e) => e.scrollWidth > e.clientWidth + 1)
  .map((e) => e.tagName + "." + e.className)
"""


async def test_create_search_and_edit_a_book(signed_in, admin_url, rows):
    page = await signed_in()
    await page.goto(f"{admin_url}/books/list")
    await page.get_by_role("link", name="New Book").click()
    await page.get_by_label("Title").fill("The Master and Margarita")
    await page.get_by_label("Author").fill("Mikhail Bulgakov")
    await page.get_by_label("ISBN").fill("978-0-14-118014-4")
    await page.get_by_label("Cover").select_option("SOFT")
    await page.get_by_label("Copies on the shelf").fill("3")
    await page.get_by_label("Daily fee (USD)").fill("1.25")
    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(page.locator(ALERT)).to_contain_text("was added successfully")
    [book] = await rows.all(select(Book))
    # The new book is shown on its own page, not somewhere in the catalogue's list.
    assert page.url.startswith(f"{admin_url}/books/detail?pk={book.id}")
    title = page.get_by_role("cell", name="The Master and Margarita", exact=True)
    await expect(title).to_be_visible()

    assert (book.title, book.isbn, book.cover, book.inventory, book.daily_fee) == (
        "The Master and Margarita",
        "9780141180144",
        "SOFT",
        3,
        Decimal("1.25"),
    )

    await page.goto(f"{admin_url}/books/list")
    await page.get_by_placeholder("Search").fill("978-0-14-118014")
    await page.get_by_placeholder("Search").press("Enter")
    await expect(page.locator("tbody tr")).to_have_count(1)
    # The list fits a 1280 px window (Playwright's default) without scrolling sideways.
    assert page.viewport_size == {"width": 1280, "height": 720}
    overflowing = await page.evaluate(OVERFLOWING)
    assert overflowing == []
    await page.goto(f"{admin_url}/books/edit?pk={book.id}")
    await page.get_by_label("Daily fee (USD)").fill("0")
    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(page.locator(".invalid-feedback")).to_contain_text("greater than 0")
    await page.get_by_label("Daily fee (USD)").fill("2.00")
    await page.get_by_label("Copies on the shelf").fill("4")
    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(page.locator(ALERT)).to_contain_text("was changed successfully")
    fresh = await rows.get(Book, book.id)
    assert (fresh.daily_fee, fresh.inventory) == (Decimal("2.00"), 4)


async def test_a_book_with_history_is_not_deleted_and_the_reason_is_shown(
    signed_in, admin_url, factory, rows
):
    member = await factory.user()
    book = await factory.book(title="Emma")
    await rows.borrowing(member, book, days_ago=10, due_days_ago=-5, returned=True)
    page = await signed_in()
    await page.goto(f"{admin_url}/books/detail?pk={book.id}")
    await page.get_by_role("button", name="Delete").click()
    await page.locator("#modal-action").get_by_role("button", name="Yes, delete").click()
    await expect(page.get_by_text("has a borrowing history and cannot be deleted")).to_be_visible()
    assert await rows.get(Book, book.id) is not None


# --- members -------------------------------------------------------------------------------


async def test_find_a_member_and_deactivate_them_ends_their_token(
    signed_in, admin_url, factory, client, rows
):
    member = await factory.user(email="ada@example.com", first_name="Ada", last_name="Lovelace")
    await factory.user(email="grace@example.com")
    token = factory.auth(member)
    assert (await client.get("/api/users/me/", headers=token)).status_code == 200

    page = await signed_in()
    await page.goto(f"{admin_url}/members/list")
    await page.get_by_placeholder("Search").fill("lovelace")
    await page.get_by_placeholder("Search").press("Enter")
    await expect(page.locator("tbody tr")).to_have_count(1)
    await page.locator("tbody tr").first.get_by_text("Lovelace").click()
    await expect(page.get_by_role("cell", name="ada@example.com")).to_be_visible()
    await page.get_by_role("button", name="Deactivate").click()
    await page.locator("#modal-action").get_by_role("button", name="Deactivate").click()
    await expect(page.locator(ALERT)).to_contain_text("ada@example.com is deactivated")

    assert (await rows.get(User, member.id)).is_active is False
    refused = await client.get("/api/users/me/", headers=token)
    assert refused.status_code == 401
    assert refused.json()["code"] == "token_not_valid"


async def test_staff_cannot_deactivate_themselves(signed_in, admin_url, staff):
    page = await signed_in()
    await page.goto(f"{admin_url}/members/detail?pk={staff.id}")
    await expect(page.get_by_role("button", name="Edit")).to_be_visible()
    await expect(page.get_by_role("button", name="Deactivate")).to_have_count(0)
    await expect(page.get_by_role("button", name="Revoke staff")).to_have_count(0)

    await page.goto(f"{admin_url}/members/edit?pk={staff.id}")
    await page.get_by_label("Staff").uncheck()
    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(page.locator(ALERT)).to_contain_text("You cannot deactivate yourself")


# --- borrowings and payments ---------------------------------------------------------------


async def test_return_an_overdue_borrowing_and_see_its_fine_with_a_checkout_link(
    signed_in, admin_url, factory, rows, sandbox
):
    member = await factory.user(email="late@example.com")
    book = await factory.book(title="Dead Souls", daily_fee=Decimal("1.50"), inventory=2)
    await rows.borrowing(member, book, days_ago=12, due_days_ago=4)
    await rows.borrowing(member, await factory.book(title="Emma"), days_ago=2, due_days_ago=-5)
    await rows.borrowing(member, await factory.book(title="Walden"), days_ago=7, due_days_ago=0)

    page = await signed_in()
    await page.goto(f"{admin_url}/")  # the Desk: one loan due back today, which its tile lists
    await expect(page.locator("#due-today .h1")).to_have_text("1")
    await page.locator("#due-today").click()
    due_today = page.locator("tbody tr")
    await expect(due_today).to_have_count(1)
    await expect(due_today.first).to_contain_text("Walden")
    await page.get_by_role("link", name="Overdue").click()
    overdue = page.locator("tbody tr")
    await expect(overdue).to_have_count(1)
    await expect(overdue.first.locator(".loan-overdue")).to_have_text("Overdue 4 days")
    await overdue.first.get_by_text("Return").click()
    await page.locator("#modal-action").get_by_role("button", name="Record the return").click()
    await expect(page.locator(ALERT)).to_contain_text("returned late: FINE of $12.00")

    [borrowing] = await rows.all(select(Borrowing).where(Borrowing.book_id == book.id))
    assert borrowing.actual_return_date is not None
    assert (await rows.get(Book, book.id)).inventory == 3
    [fine] = await rows.all(select(Payment).where(Payment.type == "FINE"))
    assert (fine.status, fine.money_to_pay) == ("PENDING", Decimal("12.00"))
    assert fine.session_url and fine.session_id in sandbox.sessions
    await expect(page.locator(ALERT)).to_contain_text(fine.session_url)

    await page.goto(f"{admin_url}/borrowings/detail?pk={borrowing.id}")
    await expect(page.locator(".checkout-link")).to_have_attribute("href", fine.session_url)
    await expect(page.get_by_role("button", name="Return")).to_have_count(0)


async def test_new_checkout_link_for_an_expired_payment(signed_in, admin_url, factory, rows, db):
    member = await factory.user()
    borrowing = await rows.borrowing(member, await factory.book(), days_ago=2, due_days_ago=-3)
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            update(Payment)
            .where(Payment.borrowing_id == borrowing.id)
            .values(status="EXPIRED", session_id=None)
        )
    [payment] = await rows.all(select(Payment))
    page = await signed_in()
    await page.goto(f"{admin_url}/payments/detail?pk={payment.id}")
    await page.get_by_role("button", name="New checkout link").click()
    await page.locator("#modal-action").get_by_role("button", name="Make the link").click()
    await expect(page.locator(ALERT)).to_contain_text("is PENDING: checkout link https://")
    renewed = await rows.get(Payment, payment.id)
    assert renewed.status == "PENDING"
    assert renewed.session_url


# --- staff messages ------------------------------------------------------------------------


async def test_send_a_failed_message_again(signed_in, admin_url, rows, app):
    message_id = await rows.failed_message()
    page = await signed_in()
    await page.locator("#failed-messages").click()
    await page.wait_for_url("**/messages/list?**")  # loaded: its scripts bind the buttons
    failed = page.locator("tbody tr")
    await expect(failed).to_have_count(1)
    await expect(failed.first.locator(".status-failed")).to_be_visible()
    await failed.first.get_by_text("Send again").click()
    await expect(page.locator(ALERT)).to_contain_text(f"Message #{message_id} is queued")

    message = await rows.get(Notification, message_id)
    assert (message.status, message.attempts, message.last_error) == ("PENDING", 0, None)
    assert await app.state.queue.exists(f"arq:job:notification:{message_id}")


# --- forged requests -----------------------------------------------------------------------


async def test_a_post_without_the_csrf_token_is_refused(signed_in, admin_url, rows):
    message_id = await rows.failed_message()
    page = await signed_in()
    status, text = await page.evaluate(
        """async (url) => {
            const response = await fetch(url, {method: "POST"});
            return [response.status, await response.text()];
        }""",
        f"{admin_url}/_api/messages/row-action?name=send_again&pk={message_id}",
    )
    assert (status, text) == (403, "CSRF token missing")
    assert (await rows.get(Notification, message_id)).status == "FAILED"


@pytest.mark.parametrize("with_token", [False, True])
async def test_a_form_on_another_site_cannot_act_for_signed_in_staff(
    signed_in, admin_url, rows, serve, with_token
):
    """Another site on the same host (so the session cookie is sent): refused by the Origin
    check, and without the page's CSRF token by that too."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    message_id = await rows.failed_message()
    page = await signed_in()
    token = ""
    if with_token:  # even a token lifted from the admin does not help a foreign page
        token = await page.locator('input[name="csrftoken"]').first.get_attribute("value") or ""
    target = f"{admin_url}/_api/messages/row-action?name=send_again&pk={message_id}"

    async def forged(_request):
        return HTMLResponse(
            f'<form id="f" method="post" action="{target}">'
            f'<input name="csrftoken" value="{token}"></form>'
            '<script>document.getElementById("f").submit()</script>'
        )

    evil = serve(Starlette(routes=[Route("/", forged)]), lifespan="off")
    await page.goto(evil.public_url)
    await expect(page.locator("body")).to_contain_text("refused")
    assert (await rows.get(Notification, message_id)).status == "FAILED"
