"""The sandbox Stripe keeps its sessions in a file: after a restart of the local run, the
payment links of the previous run still work. A restart is a second SandboxStripe over the
same file, put where the first one was mounted."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import respx

from library_service.core import clock
from library_service.dev.fake_stripe import IDEMPOTENCY_KEY_LIFETIME_SECONDS, SandboxStripe
from library_service.models import Payment
from tests.conftest import SANDBOX_PAGES, WEBHOOK_SECRET
from tests.sandbox.test_sandbox_stripe import API, KEY, create, create_ok, session_params


@pytest.fixture
def sessions_file(tmp_path: Path) -> Path:
    return tmp_path / "stripe-sandbox" / "sessions.jsonl"


@pytest.fixture
def sandbox(sessions_file: Path) -> SandboxStripe:
    """This module's sandbox keeps its sessions in a file (the suite's lives in memory)."""
    return file_backed(sessions_file)


def file_backed(sessions_file: Path) -> SandboxStripe:
    return SandboxStripe(
        public_url=SANDBOX_PAGES, webhook_secret=WEBHOOK_SECRET, sessions_file=sessions_file
    )


def restart(stripe_mock: respx.MockRouter, sessions_file: Path) -> SandboxStripe:
    """A new sandbox over the same file, answering where the old one did."""
    restarted = file_backed(sessions_file)
    for route in ("stripe", "checkout"):
        stripe_mock.routes[route].side_effect = respx.ASGIHandler(restarted.app)
    return restarted


def records(sessions_file: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in sessions_file.read_text().splitlines()]


async def test_a_pending_payments_link_still_works_after_a_restart(
    client, browser, factory, db, settings, stripe_mock, sessions_file
):
    member = await factory.user()
    book = await factory.book(title="The Dispossessed")
    due = clock.today(settings.timezone) + timedelta(days=4)
    response = await client.post(
        "/api/borrowings/",
        json={"book": book.id, "expected_return_date": str(due)},
        headers=factory.auth(member),
    )
    assert response.status_code == 201, response.text
    [payment] = response.json()["payments"]
    assert payment["status"] == "PENDING"

    restarted = restart(stripe_mock, sessions_file)

    assert payment["session_id"] in restarted.sessions
    page = await browser.get(payment["session_url"])
    assert page.status_code == 200
    assert "The Dispossessed" in page.text
    assert ">Pay $6.00</button>" in page.text
    redirect = await browser.post(payment["session_url"] + "/pay")
    assert redirect.status_code == 303
    location = urlsplit(redirect.headers["location"])
    assert location.path == "/api/payments/success/"
    landing = await client.get(f"{location.path}?{location.query}")
    assert landing.status_code < 400, landing.text
    async with db.sessionmaker() as session:
        row = await session.get(Payment, payment["id"])
        assert row is not None
        assert row.status == "PAID"


async def test_paid_and_expired_states_survive_a_restart(browser, sandbox, sessions_file):
    paid, expired, still_open = [await create_ok(browser) for _ in range(3)]
    sandbox.mark_paid(paid["id"])
    sandbox.mark_expired(expired["id"])

    restarted = file_backed(sessions_file)

    assert restarted.sessions[paid["id"]]["payment_status"] == "paid"
    assert restarted.sessions[paid["id"]]["status"] == "complete"
    assert restarted.sessions[expired["id"]]["status"] == "expired"
    assert restarted.sessions[still_open["id"]] == still_open
    assert restarted.sessions[still_open["id"]]["expires_at"] == still_open["expires_at"]


async def test_a_session_expiring_while_stopped_reads_as_expired(
    browser, sandbox, stripe_mock, sessions_file
):
    created = await create_ok(browser)
    lines = sessions_file.read_text().splitlines()
    record = json.loads(lines[-1])
    record["session"]["expires_at"] = int(time.time()) - 1  # its 24 h passed meanwhile
    sessions_file.write_text("\n".join([*lines, json.dumps(record)]) + "\n")

    restart(stripe_mock, sessions_file)

    response = await browser.get(f"{API}/{created['id']}", headers=KEY)
    assert response.json()["status"] == "expired"
    assert (await browser.post(f"{created['url']}/pay")).status_code == 400


async def test_an_idempotency_key_replays_its_session_after_a_restart(
    browser, sandbox, stripe_mock, sessions_file
):
    key = {"Idempotency-Key": "payment-7-attach"}
    first = (await create(browser, headers=key)).json()
    restarted = restart(stripe_mock, sessions_file)

    again = await create(browser, headers=key)
    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    assert list(restarted.sessions) == [first["id"]]
    other = session_params()
    other["line_items"][0]["price_data"]["unit_amount"] = 700
    refused = await create(browser, other, headers=key)
    assert refused.status_code == 400
    assert refused.json()["error"]["type"] == "idempotency_error"


async def test_loading_compacts_the_file_and_forgets_old_keys(browser, sandbox, sessions_file):
    created = await create_ok(browser)
    sandbox.mark_paid(created["id"])
    with sessions_file.open("a") as file:
        stale = time.time() - IDEMPOTENCY_KEY_LIFETIME_SECONDS - 1
        entry = {"key": "old", "fingerprint": "f", "session_id": created["id"], "created": stale}
        file.write(json.dumps(entry) + "\n")
    assert len(records(sessions_file)) == 3  # created, paid, old key

    restarted = file_backed(sessions_file)

    assert records(sessions_file) == [{"session": restarted.sessions[created["id"]]}]
    assert restarted.sessions[created["id"]]["payment_status"] == "paid"


async def test_a_line_cut_short_by_a_crash_is_skipped(browser, sandbox, stripe_mock, sessions_file):
    created = await create_ok(browser)
    with sessions_file.open("a") as file:
        file.write('{"session": {"id": "cs_test_torn", "sta')

    restarted = restart(stripe_mock, sessions_file)

    assert list(restarted.sessions) == [created["id"]]
    assert (await browser.get(created["url"])).status_code == 200


def test_a_missing_file_starts_empty_and_is_created(sessions_file):
    assert not sessions_file.exists()
    sandbox = file_backed(sessions_file)
    assert sandbox.sessions == {}
    assert sessions_file.read_text() == ""
