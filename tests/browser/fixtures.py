"""Fixtures for tests in a real browser: headless Chromium, and apps served over real HTTP.

A plugin of the root conftest, so that the whole run shares one browser and one live
server (a conftest imported by another folder's conftest would make a second of each).

Playwright drives the system's headless Chromium (Debian's `chromium-headless-shell`
package, /usr/bin/chromium-headless-shell; CHROMIUM_PATH overrides, /usr/bin/chromium works
too): Playwright's own browser download is not used. The headless shell is the browser
without its windowing layer, the one Playwright itself runs headless: in one process the
browser tests took 27 s with it and 33-34 s with the full `chromium` (Chromium's CPU 24-25 s
against 37-38 s). Without it the browser tests are skipped, except under CI, where they fail
(.ci/run installs it).

- `chromium`: one browser for the run. It resolves BROWSER_HOST to loopback, so a page can
  be opened under a name that is not localhost, as in a deployment (some scripts behave
  differently on localhost).
- `page`: the run's one tab, handed to each test as a new one: no cookies, no local storage
  or IndexedDB, no routes, no other tabs, the default viewport, on about:blank (a new tab
  in a new context when the last test left one that cannot be reset, its renderer crashed
  say). A new context and tab per test cost Chromium about 0.6 s of CPU before the first
  page, and its first pages another second (a new renderer process, with cold caches). The
  context asks for reduced motion, as a user may: Bootstrap's fades and slides are then
  skipped (headless Chromium renders every frame of an animation in software), and so are
  the waits for elements to stop moving. Measured in one process: the browser tests took
  56 s with a context per test, 46 s with reduced motion, 35 s with one tab as well
  (Chromium's CPU 70 s, then 62 s, then 41 s).
- `console_errors`: the page's console errors and uncaught exceptions, as they come.
- `keep_on_origin(url)`: from then on the page may load nothing from another origin.
- `serve(app)`: serves any ASGI app on a free loopback port in a thread -> Served.
- `live_server`: the API, configured as the suite's `app` (test database and Redis), served.
  It runs in this process, so rows a test writes (e.g. with `factory`) are visible to it
  once committed, and the suite's respx routes intercept its outbound HTTP calls too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import pytest
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Page,
    Request,
    Route,
    ViewportSize,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError

from library_service.core.config import Settings
from library_service.dev.embedded import free_port
from library_service.dev.local import serve_in_thread
from library_service.main import create_app

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium-headless-shell"))
VIEWPORT = ViewportSize(width=1280, height=720)  # Playwright's default
BROWSER_HOST = "library.test"  # .test is reserved for tests: it names no real host
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI and containers run as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    f"--host-resolver-rules=MAP {BROWSER_HOST} 127.0.0.1",
]


@dataclass(frozen=True)
class Served:
    port: int

    @property
    def url(self) -> str:
        """For HTTP clients in the test."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def public_url(self) -> str:
        """For the browser: the same server under a name that is not localhost."""
        return f"http://{BROWSER_HOST}:{self.port}"


Serve = Callable[..., Served]


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium-headless-shell"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return str(CHROMIUM)


@pytest.fixture(scope="session")
async def chromium(chromium_executable: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_executable, args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


class Tab:
    """The run's one tab (`page`), in a context of its own; a new one if a test broke it."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.page: Page | None = None

    async def open(self) -> None:
        context = await self.browser.new_context(reduced_motion="reduce")
        self.page = await context.new_page()

    async def hand_on(self) -> None:
        """Ready for the next test: the same tab reset, or a new one if it cannot be (its
        renderer crashed, say)."""
        assert self.page is not None
        try:
            await as_new(self.page)
        except PlaywrightError:
            await self.close()
            await self.open()

    async def close(self) -> None:
        if self.page is not None:
            with contextlib.suppress(PlaywrightError):
                await self.page.context.close()


@pytest.fixture(scope="session")
async def tab(chromium: Browser) -> AsyncIterator[Tab]:
    tab = Tab(chromium)
    await tab.open()
    yield tab
    await tab.close()


@pytest.fixture
async def page(tab: Tab) -> AsyncIterator[Page]:
    assert tab.page is not None
    yield tab.page
    await tab.hand_on()


async def as_new(tab: Page) -> None:
    """Leaves `tab` as a new context's first tab: the tabs a test opened closed, its routes
    gone, on about:blank, no cookies, local storage or IndexedDB, the default viewport."""
    context = tab.context
    for other in context.pages:
        if other is not tab:
            await other.close()
    await tab.unroute_all(behavior="ignoreErrors")
    await tab.goto("about:blank")
    await context.set_storage_state({"cookies": [], "origins": []})
    if tab.viewport_size != VIEWPORT:
        await tab.set_viewport_size(VIEWPORT)


@pytest.fixture
def console_errors(page: Page) -> Iterator[list[str]]:
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    def on_error(error: PlaywrightError) -> None:
        errors.append(f"uncaught: {error}")

    page.on("console", on_console)
    page.on("pageerror", on_error)
    yield errors
    page.remove_listener("console", on_console)
    page.remove_listener("pageerror", on_error)


@pytest.fixture(scope="session")
def serve() -> Iterator[Serve]:
    """`serve(app, lifespan="on")`: served until the run ends."""
    stops: list[Callable[[], None]] = []

    def start(app: Any, *, lifespan: Literal["on", "off"] = "on") -> Served:
        port = free_port()
        stops.append(serve_in_thread(app, port, name=f"live-server-{port}", lifespan=lifespan))
        return Served(port)

    yield start
    for stop in reversed(stops):
        stop()


@pytest.fixture(scope="session")
def live_server(settings: Settings, serve: Serve) -> Served:
    return serve(create_app(settings, configure_logs=False))


@pytest.fixture
def keep_on_origin(page: Page) -> Callable[[str], Awaitable[list[str]]]:
    """`refused = await keep_on_origin(url)`: from then on the page loads only from that
    URL's origin; every other request is refused and its URL added to `refused` (what the
    page would have fetched from the internet)."""

    async def install(url: str) -> list[str]:
        allowed = _origin(url)
        refused: list[str] = []

        async def guard(route: Route, request: Request) -> None:
            if _origin(request.url) == allowed:
                await route.continue_()
            else:
                refused.append(request.url)
                await route.abort("blockedbyclient")

        await page.route("**/*", guard)
        return refused

    return install


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`--dist loadgroup`), every test in the browser goes to one test
    process: one Chromium and one live server for the run, warm from test to test."""
    for item in items:
        if "tab" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("browser"))
