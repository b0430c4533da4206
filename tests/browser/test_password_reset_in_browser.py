"""Getting back in, as a member does it in a real browser (headless Chromium): the reset
e-mail goes through the worker's delivery to a real SMTP server, the local mailbox's page
shows it, its link opens the API's own password page, and the new password signs in."""

from __future__ import annotations

import httpx
from playwright.async_api import expect

from tests.factories import assert_can_login, assert_cannot_login, deliver_notices

EMAIL = "reader@example.com"
OLD_PASSWORD = "password123"  # the factory's
NEW_PASSWORD = "a-brand-new-password"


async def test_a_member_resets_the_password_from_the_local_mailbox(
    page, console_errors, serve, live_server, app, db, settings, factory, mailbox
):
    await factory.member(email=EMAIL)
    async with httpx.AsyncClient(base_url=live_server.url) as api:
        asked = await api.post("/api/users/password-reset/", json={"email": EMAIL})
        assert asked.status_code == 202, asked.text

        # The worker makes the link outside any request: on PUBLIC_BASE_URL, which the local
        # run sets to the API's own address (here the live server, as the browser reaches it).
        worker_settings = settings.model_copy(update={"PUBLIC_BASE_URL": live_server.public_url})
        assert set((await deliver_notices(app, db, worker_settings)).values()) == {"sent"}
        assert [m.message["To"] for m in mailbox.messages()] == [EMAIL]

        mailbox_page = serve(mailbox.app, lifespan="off").public_url
        await page.goto(f"{mailbox_page}/")
        await expect(page.get_by_role("heading", name="Local mailbox")).to_be_visible()
        await expect(page.get_by_role("cell", name=EMAIL)).to_be_visible()
        await page.get_by_role("link", name="Reset your password").click()

        await expect(page).to_have_title("Reset your password")
        await expect(page.locator("dd", has_text=EMAIL)).to_be_visible()
        await expect(page.locator("pre")).to_contain_text("/api/users/password-reset/page/")
        body = page.frame_locator('iframe[title="HTML body"]')
        await body.get_by_role("link", name="Choose a new password").click()

        await page.wait_for_url(f"{live_server.public_url}/api/users/password-reset/page/?token=*")
        link = page.url
        console_errors.clear()  # the mailbox page has no favicon: a 404 there is no concern
        await expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
        await page.get_by_label("New password").fill(NEW_PASSWORD)
        await page.get_by_label("The same again").fill(NEW_PASSWORD)
        await page.get_by_role("button", name="Set my password").click()

        await expect(page.get_by_role("heading", name="Your password is set")).to_be_visible()
        await expect(
            page.get_by_text(f"Sign in as {EMAIL} with your new password.")
        ).to_be_visible()
        assert console_errors == []

        await assert_can_login(api, EMAIL, NEW_PASSWORD)
        await assert_cannot_login(api, EMAIL, OLD_PASSWORD)

        # The link worked once: opened again, it is refused.
        await page.goto(link)
        await expect(page.get_by_role("heading", name="This link does not work")).to_be_visible()
