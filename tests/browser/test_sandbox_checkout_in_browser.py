"""The sandbox Stripe's checkout page as a phone shows it."""

from __future__ import annotations

from playwright.async_api import expect

from tests.sandbox.test_sandbox_stripe import create_ok, session_params

NARROW = {"width": 320, "height": 640}


async def test_the_checkout_page_on_a_narrow_screen(page, serve, browser, sandbox):
    items = session_params()["line_items"]
    items[0]["price_data"]["product_data"]["description"] = (
        "by Mikhail Bulgakov: 14 day(s), 2026-11-30 to 2026-12-14"
    )
    open_session, paid = [await create_ok(browser, line_items=items) for _ in range(2)]
    sandbox.mark_paid(paid["id"])
    pages = serve(sandbox.app, lifespan="off").url
    await page.set_viewport_size(NARROW)

    await page.goto(f"{pages}/c/pay/{open_session['id']}")
    await expect(page.get_by_role("button", name="Pay $6.00")).to_be_visible()
    await expect(page.get_by_role("button", name="Cancel")).to_be_visible()
    lines_per_date = await page.locator(".detail .nowrap").evaluate_all(
        "dates => dates.map(date => date.getClientRects().length)"
    )
    assert lines_per_date == [1, 1]

    await page.goto(f"{pages}/c/pay/{paid['id']}")
    await expect(page.get_by_text("This session is paid.")).to_be_visible()
    assert await page.get_by_role("button").count() == 0
