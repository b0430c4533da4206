"""Take the README's screenshot of the staff admin.

With `make run` running (its demo data and staff account), run:

    .venv/bin/python scripts/admin_screenshot.py

It signs in with the demo staff account in headless Chromium (Debian's `chromium`, or
CHROMIUM_PATH) and saves the page to docs/admin.png. Options: --base-url, --email,
--password, --page (a path under /admin/), --output.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parent.parent
VIEWPORT = {"width": 1280, "height": 720}


async def take(base_url: str, email: str, password: str, page_path: str, output: Path) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"),
            args=["--no-sandbox", "--disable-gpu"],
        )
        page = await browser.new_page(viewport=VIEWPORT)
        await page.goto(f"{base_url}/admin/login")
        await page.get_by_label("Email").fill(email)
        await page.get_by_label("Password", exact=True).fill(password)
        await page.get_by_role("button", name="Sign in").click()
        await page.get_by_role("heading", name="Desk", exact=True).wait_for()
        await page.goto(f"{base_url}/admin/{page_path.lstrip('/')}")
        await page.wait_for_load_state("networkidle")
        output.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(output))
        await browser.close()
    print(f"saved {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--email", default="admin@library.example.com")
    parser.add_argument("--password", default="admin-password")
    parser.add_argument("--page", default="books/list", help="path under /admin/")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "admin.png")
    options = parser.parse_args()
    asyncio.run(
        take(options.base_url, options.email, options.password, options.page, options.output)
    )


if __name__ == "__main__":
    main()
