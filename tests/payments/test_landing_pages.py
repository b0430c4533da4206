"""What a member's browser sees back from Stripe: a page with the book, the amount, the status
and what to do next, or with FRONTEND_URL a 303 to the front end; API clients keep JSON."""

from __future__ import annotations

from typing import Any

import pytest

from library_service.models import Payment
from tests.factories import app_path, fetch, the_payment

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
FRONT_END = "https://app.library.example.com"


@pytest.fixture
async def fee(client, factory) -> dict[str, Any]:
    """The PENDING $6.00 fee of a loan of «Middlemarch» (4 days at $1.50)."""
    _, borrowing = await factory.borrowed(client, title="Middlemarch", author="George Eliot")
    return the_payment(borrowing)


@pytest.fixture
def front_end(settings, monkeypatch) -> str:
    monkeypatch.setattr(settings, "FRONTEND_URL", FRONT_END)
    return FRONT_END


async def back_from_stripe(browser, session_url: str, button: str) -> str:
    """Press Pay or Cancel on the sandbox's page; where Stripe sends the browser."""
    redirect = await browser.post(f"{session_url}/{button}")
    assert redirect.status_code == 303, redirect.text
    return app_path(redirect.headers["location"])


async def test_a_browser_back_from_paying_sees_a_page_of_the_payment(client, browser, db, fee):
    landing = await back_from_stripe(browser, fee["session_url"], "pay")
    page = await client.get(landing, headers=BROWSER)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "Payment received, thank you!" in html
    assert "«Middlemarch» by George Eliot" in html
    assert "$6.00" in html and "Borrowing fee" in html and "paid" in html
    assert (await fetch(db, Payment, fee["id"])).status == "PAID"  # confirmed, as for JSON


async def test_a_browser_that_cancelled_sees_the_link_that_stays_payable(client, browser, db, fee):
    landing = await back_from_stripe(browser, fee["session_url"], "cancel")
    page = await client.get(landing, headers=BROWSER)
    assert page.status_code == 200
    html = page.text
    assert "Payment not completed" in html and "$6.00" in html and "pending" in html
    assert "stays payable until" in html
    assert f'href="{fee["session_url"]}"' in html  # Pay now: the same link
    assert (await fetch(db, Payment, fee["id"])).status == "PENDING"


async def test_an_expired_payment_page_says_to_renew_it(client, browser, db, sandbox, fee):
    landing = await back_from_stripe(browser, fee["session_url"], "cancel")
    async with db.sessionmaker() as session, session.begin():
        payment = await session.get(Payment, fee["id"])
        assert payment is not None
        payment.status = "EXPIRED"
    html = (await client.get(landing, headers=BROWSER)).text
    assert "expired" in html
    assert f"/api/payments/{fee['id']}/renew/" in html
    assert f'href="{fee["session_url"]}"' not in html


async def test_a_browser_back_from_an_unpaid_session_is_told_nothing_was_charged(client, fee):
    # The success URL with a session that was never paid (a forged or early visit).
    page = await client.get(
        "/api/payments/success/", params={"session_id": fee["session_id"]}, headers=BROWSER
    )
    assert page.status_code == 200
    assert "Payment not completed" in page.text and "Nothing was charged" in page.text


async def test_an_unknown_session_gets_a_page_saying_so(client):
    page = await client.get(
        "/api/payments/cancel/", params={"session_id": "cs_unknown"}, headers=BROWSER
    )
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "No payment has this checkout session." in page.text


async def test_the_page_escapes_what_it_shows(client, browser, factory):
    _, borrowing = await factory.borrowed(client, title="<script>alert(1)</script>")
    landing = await back_from_stripe(browser, the_payment(borrowing)["session_url"], "pay")
    html = (await client.get(landing, headers=BROWSER)).text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize(("button", "status"), [("pay", "paid"), ("cancel", "cancelled")])
async def test_with_a_front_end_the_browser_is_sent_on_to_it(
    client, browser, db, fee, front_end, button, status
):
    landing = await back_from_stripe(browser, fee["session_url"], button)
    response = await client.get(landing, headers=BROWSER)
    assert response.status_code == 303
    assert response.headers["location"] == f"{front_end}/payments/{fee['id']}?status={status}"
    expected = "PAID" if button == "pay" else "PENDING"
    assert (await fetch(db, Payment, fee["id"])).status == expected


async def test_with_a_front_end_an_unpaid_session_is_sent_on_as_unpaid(client, fee, front_end):
    response = await client.get(
        "/api/payments/success/", params={"session_id": fee["session_id"]}, headers=BROWSER
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"{front_end}/payments/{fee['id']}?status=unpaid"


@pytest.mark.parametrize("accept", [None, "application/json", "*/*"])
async def test_api_clients_keep_their_json(client, browser, fee, front_end, accept):
    landing = await back_from_stripe(browser, fee["session_url"], "pay")
    headers = {"Accept": accept} if accept else {}
    response = await client.get(landing, headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["payment"]["status"] == "PAID"
    assert body["detail"] == "Payment received, thank you!"
