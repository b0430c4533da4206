"""Swagger UI and ReDoc in headless Chromium, opened under a public-looking host name, with
every request to another origin refused: the pages must render from the app's own assets,
as on a machine without internet."""

from __future__ import annotations

from playwright.async_api import expect

OPERATION = ".opblock-get:has(.opblock-summary-path[data-path='/api/users/me/'])"


async def test_swagger_ui_renders_the_operations_offline(
    page, live_server, keep_on_origin, console_errors
):
    refused = await keep_on_origin(live_server.public_url)
    await page.goto(f"{live_server.public_url}/docs")

    await expect(page.locator(".opblock").first).to_be_visible()
    paths = await page.locator(".opblock-summary-path").evaluate_all(
        "nodes => nodes.map(node => node.dataset.path)"
    )
    assert {"/api/books/", "/api/borrowings/", "/api/payments/", "/api/users/me/"} <= set(paths)
    await expect(page.locator(".info .title")).to_contain_text("Library Service")
    await expect(page.locator(".auth-wrapper button.authorize")).to_be_visible()
    assert refused == []
    assert console_errors == []


async def test_swagger_ui_authorize_sends_the_token_and_keeps_it_after_a_reload(
    page, live_server, keep_on_origin, factory
):
    member = await factory.user(email="swagger@example.com")
    token = factory.auth(member)["Authorization"].removeprefix("Bearer ")
    refused = await keep_on_origin(live_server.public_url)
    await page.goto(f"{live_server.public_url}/docs")

    await page.locator(".auth-wrapper button.authorize").click()
    await page.locator(".modal-ux input[type=text]").first.fill(token)
    await page.locator(".modal-ux .auth-btn-wrapper button.authorize").first.click()
    await page.locator(".modal-ux button.btn-done").first.click()
    await page.reload()  # persistAuthorization: the token survives it

    await expect(page.locator(".auth-wrapper button.authorize.locked")).to_be_visible()
    operation = page.locator(OPERATION)
    await operation.locator(".opblock-summary").click()
    await operation.locator("button.try-out__btn").click()
    async with page.expect_response(lambda response: "/api/users/me/" in response.url) as answer:
        await operation.locator("button.execute").click()
    response = await answer.value
    assert response.status == 200
    assert (await response.json())["email"] == "swagger@example.com"
    assert refused == []


async def test_redoc_renders_offline(page, live_server, keep_on_origin, console_errors):
    refused = await keep_on_origin(live_server.public_url)
    await page.goto(f"{live_server.public_url}/redoc")

    await expect(page.locator("h1").first).to_contain_text("Library Service")
    await expect(page.get_by_text("/api/borrowings/").first).to_be_attached()
    assert refused == []
    assert console_errors == []  # not even the vendor's logo from its CDN
