"""The browser tests share one tab (tests/browser/fixtures.py): what a test leaves in it is
gone before the next."""

from __future__ import annotations

import contextlib

from playwright.async_api import Error as PlaywrightError
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.browser.fixtures import VIEWPORT, as_new

PAGE = "<!doctype html><title>t</title><p>a page</p>"


async def _page(request):
    return HTMLResponse(PAGE)


async def test_a_tab_handed_on_keeps_nothing_of_the_test_before(page, serve):
    served = serve(Starlette(routes=[Route("/", _page)]), lifespan="off")
    await page.goto(served.public_url)
    await page.evaluate(
        """async () => {
            document.cookie = "left=1; path=/";
            localStorage.setItem("left", "1");
            await new Promise((done) => {
                const open = indexedDB.open("left", 1);
                open.onupgradeneeded = () => open.result.createObjectStore("things");
                open.onsuccess = () => { open.result.close(); done(); };
            });
        }"""
    )
    await page.route("**/*", lambda route: route.abort())
    await page.set_viewport_size({"width": 400, "height": 300})
    await page.context.new_page()

    await as_new(page)

    assert page.url == "about:blank"
    assert page.context.pages == [page]
    assert page.viewport_size == VIEWPORT
    assert await page.context.cookies() == []
    await page.goto(served.public_url)  # no route aborts it
    assert await page.evaluate("document.cookie") == ""
    assert await page.evaluate("localStorage.length") == 0
    databases = await page.evaluate("async () => (await indexedDB.databases()).map(d => d.name)")
    assert databases == []


async def test_a_tab_that_crashed_is_replaced_for_the_next_test(page, tab, serve):
    served = serve(Starlette(routes=[Route("/", _page)]), lifespan="off")
    with contextlib.suppress(PlaywrightError):
        await page.goto("chrome://crash")  # the renderer dies

    await tab.hand_on()

    assert tab.page is not page
    await tab.page.goto(served.public_url)
    assert await tab.page.text_content("p") == "a page"
