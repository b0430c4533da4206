"""The sandbox Stripe on its own: Stripe-shaped API, idempotency, hosted checkout page, and
compatibility with the official SDK (through the app's StripeGateway)."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import stripe

from library_service.dev.fake_stripe import SESSION_LIFETIME_SECONDS, SandboxStripe, parse_form
from library_service.payments.errors import PaymentProviderUnavailableError

API = "https://stripe.test/v1/checkout/sessions"
PAGES = "https://checkout.stripe.test"
KEY = {"Authorization": "Bearer sk_test_sandbox_suite"}
SUCCESS = "https://library.test/api/payments/success/?session_id={CHECKOUT_SESSION_ID}"
CANCEL = "https://library.test/api/payments/cancel/?session_id={CHECKOUT_SESSION_ID}"


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's form encoding: nested dicts and lists in bracket notation."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return [(prefix, str(value))]
    pairs: list[tuple[str, str]] = []
    for key, item in items:
        pairs.extend(flatten(item, f"{prefix}[{key}]" if prefix else str(key)))
    return pairs


def session_params(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 600,
                    "product_data": {"name": "Borrowing «Dune»", "description": "by F. Herbert"},
                },
            }
        ],
        "success_url": SUCCESS,
        "cancel_url": CANCEL,
        "client_reference_id": "7",
        "metadata": {"payment_id": "7"},
    }
    params.update(overrides)
    return params


async def create(
    http: httpx.AsyncClient,
    params: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body = urlencode(flatten(params if params is not None else session_params()))
    return await http.post(
        API,
        content=body,
        headers={
            **KEY,
            "Content-Type": "application/x-www-form-urlencoded",
            **(headers or {}),
        },
    )


async def create_ok(http: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await create(http, session_params(**overrides))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_stripe_error(response: httpx.Response, status: int, **expected: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert error["type"]
    assert error["message"]
    for key, value in expected.items():
        assert error.get(key) == value, error
    return error


# -- parse_form -------------------------------------------------------------------------------


def test_parse_form_decodes_bracket_notation():
    body = (
        b"mode=payment"
        b"&line_items[0][quantity]=1"
        b"&line_items[0][price_data][currency]=usd"
        b"&line_items[0][price_data][unit_amount]=600"
        b"&line_items[0][price_data][product_data][name]=Borrowing+%C2%ABDune%C2%BB"
        b"&success_url=https%3A%2F%2Fx.test%2Fok%3Fsession_id%3D%7BCHECKOUT_SESSION_ID%7D"
        b"&metadata[payment_id]=42"
        b"&client_reference_id="
    )
    assert parse_form(body) == {
        "mode": "payment",
        "line_items": [
            {
                "quantity": "1",
                "price_data": {
                    "currency": "usd",
                    "unit_amount": "600",
                    "product_data": {"name": "Borrowing «Dune»"},
                },
            }
        ],
        "success_url": "https://x.test/ok?session_id={CHECKOUT_SESSION_ID}",
        "metadata": {"payment_id": "42"},
        "client_reference_id": "",
    }


def test_parse_form_orders_list_items_numerically():
    pairs = [(f"expand[{i}]", f"v{i}") for i in (10, 2, 0, 1, 11, 3, 4, 5, 6, 7, 8, 9)]
    assert parse_form(urlencode(pairs).encode()) == {"expand": [f"v{i}" for i in range(12)]}


def test_parse_form_percent_encoded_brackets_and_empty_body():
    assert parse_form(b"metadata%5Bpayment_id%5D=5&line_items%5B0%5D%5Bquantity%5D=1") == {
        "metadata": {"payment_id": "5"},
        "line_items": [{"quantity": "1"}],
    }
    assert parse_form(b"") == {}


def test_flatten_round_trips_through_parse_form():
    params = session_params()
    decoded = parse_form(urlencode(flatten(params)).encode())
    assert decoded["line_items"][0]["price_data"]["product_data"]["name"] == "Borrowing «Dune»"
    assert decoded["line_items"][0]["price_data"]["unit_amount"] == "600"
    assert decoded["success_url"] == SUCCESS


# -- the API: Stripe-shaped answers and errors ---------------------------------------------------


async def test_create_answers_a_stripe_shaped_session(browser, sandbox):
    before = int(time.time())
    session = await create_ok(browser)
    assert session["id"].startswith("cs_test_")
    assert session["object"] == "checkout.session"
    assert session["mode"] == "payment"
    assert session["status"] == "open"
    assert session["payment_status"] == "unpaid"
    assert session["amount_total"] == 600
    assert session["currency"] == "usd"
    assert session["url"] == f"{PAGES}/c/pay/{session['id']}"
    assert session["success_url"] == SUCCESS
    assert session["cancel_url"] == CANCEL
    assert session["metadata"] == {"payment_id": "7"}
    assert session["client_reference_id"] == "7"
    assert session["livemode"] is False
    assert before <= session["created"] <= int(time.time())
    assert session["expires_at"] == session["created"] + SESSION_LIFETIME_SECONDS
    assert sandbox.sessions[session["id"]]["status"] == "open"
    assert sandbox.requests[-1][0:2] == ("POST", "/v1/checkout/sessions")
    assert sandbox.requests[-1][2]["metadata"] == {"payment_id": "7"}


async def test_amount_total_multiplies_quantity(browser):
    params = session_params()
    params["line_items"][0]["quantity"] = 3
    response = await create(browser, params)
    assert response.status_code == 200, response.text
    assert response.json()["amount_total"] == 1800


async def test_retrieve_returns_the_session(browser):
    created = await create_ok(browser)
    response = await browser.get(f"{API}/{created['id']}", headers=KEY)
    assert response.status_code == 200
    assert response.json() == created


async def test_retrieve_unknown_session_is_404_resource_missing(browser):
    response = await browser.get(f"{API}/cs_test_nope", headers=KEY)
    error = assert_stripe_error(
        response, 404, code="resource_missing", type="invalid_request_error"
    )
    assert "cs_test_nope" in error["message"]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"Authorization": "Bearer sk_live_real_key"}, id="live-key"),
        pytest.param({"Authorization": "Bearer pk_test_publishable"}, id="publishable"),
        pytest.param({"Authorization": "Basic sk_test_x"}, id="not-bearer"),
        pytest.param({"Authorization": "Bearer "}, id="empty"),
    ],
)
async def test_api_refuses_missing_or_invalid_key(browser, sandbox, headers):
    created = await create_ok(browser)
    sessions_before = dict(sandbox.sessions)
    requests_before = len(sandbox.requests)

    body = urlencode(flatten(session_params()))
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    responses = [
        await browser.post(API, content=body, headers={**form, **headers}),
        await browser.get(f"{API}/{created['id']}", headers=headers),
        await browser.post(f"{API}/{created['id']}/expire", headers=headers),
    ]
    for response in responses:
        assert_stripe_error(response, 401, type="invalid_request_error")
    assert sandbox.sessions == sessions_before
    assert sandbox.sessions[created["id"]]["status"] == "open"
    assert len(sandbox.requests) == requests_before


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        pytest.param({"mode": "subscription"}, "mode", id="mode"),
        pytest.param({"success_url": ""}, "success_url", id="no-success-url"),
        pytest.param({"currency": "eur"}, "line_items[0][price_data][currency]", id="currency"),
        pytest.param(
            {"unit_amount": 49}, "line_items[0][price_data][unit_amount]", id="under-minimum"
        ),
        pytest.param(
            {"unit_amount": "6.00"}, "line_items[0][price_data][unit_amount]", id="not-cents"
        ),
        pytest.param({"unit_amount": -600}, "line_items[0][price_data][unit_amount]", id="neg"),
        pytest.param(
            {"name": ""}, "line_items[0][price_data][product_data][name]", id="no-product-name"
        ),
        pytest.param({"two_items": True}, "line_items", id="two-line-items"),
    ],
)
async def test_create_validates_params_like_stripe(browser, sandbox, overrides, param):
    params = session_params()
    price = params["line_items"][0]["price_data"]
    if "mode" in overrides:
        params["mode"] = overrides["mode"]
    if "success_url" in overrides:
        params["success_url"] = overrides["success_url"]
    if "currency" in overrides:
        price["currency"] = overrides["currency"]
    if "unit_amount" in overrides:
        price["unit_amount"] = overrides["unit_amount"]
    if "name" in overrides:
        price["product_data"]["name"] = overrides["name"]
    if "two_items" in overrides:
        params["line_items"].append(params["line_items"][0])
    response = await create(browser, params)
    assert_stripe_error(response, 400, param=param, code="parameter_invalid")
    assert sandbox.sessions == {}


async def test_minimum_amount_is_accepted(browser):
    params = session_params()
    params["line_items"][0]["price_data"]["unit_amount"] = 50
    response = await create(browser, params)
    assert response.status_code == 200, response.text
    assert response.json()["amount_total"] == 50


# -- idempotency -------------------------------------------------------------------------------


async def test_idempotency_key_replays_the_same_session(browser, sandbox):
    key = {"Idempotency-Key": "payment-7-abc"}
    first = await create(browser, headers=key)
    second = await create(browser, headers=key)
    assert first.status_code == second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert len(sandbox.sessions) == 1


async def test_idempotency_key_reused_with_other_params_is_refused(browser, sandbox):
    key = {"Idempotency-Key": "payment-7-abc"}
    first = await create(browser, headers=key)
    assert first.status_code == 200
    params = session_params()
    params["line_items"][0]["price_data"]["unit_amount"] = 700
    response = await create(browser, params, headers=key)
    assert_stripe_error(response, 400, type="idempotency_error")
    assert list(sandbox.sessions) == [first.json()["id"]]
    assert sandbox.sessions[first.json()["id"]]["amount_total"] == 600


async def test_different_or_missing_keys_create_new_sessions(browser, sandbox):
    a = await create(browser, headers={"Idempotency-Key": "k-1"})
    b = await create(browser, headers={"Idempotency-Key": "k-2"})
    c = await create(browser)
    d = await create(browser)
    assert len({r.json()["id"] for r in (a, b, c, d)}) == 4
    assert len(sandbox.sessions) == 4


async def test_idempotent_replay_reflects_current_state(browser, sandbox):
    key = {"Idempotency-Key": "k-state"}
    first = (await create(browser, headers=key)).json()
    sandbox.mark_paid(first["id"])
    replay = (await create(browser, headers=key)).json()
    assert replay["id"] == first["id"]
    assert len(sandbox.sessions) == 1


# -- expire ------------------------------------------------------------------------------------


async def test_expire_open_session_then_again_is_refused(browser, sandbox):
    created = await create_ok(browser)
    response = await browser.post(f"{API}/{created['id']}/expire", headers=KEY)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "expired"
    assert response.json()["url"] is None
    assert sandbox.sessions[created["id"]]["status"] == "expired"

    again = await browser.post(f"{API}/{created['id']}/expire", headers=KEY)
    assert_stripe_error(again, 400, code="checkout_session_not_open")
    assert sandbox.sessions[created["id"]]["status"] == "expired"


async def test_expire_paid_session_is_refused(browser, sandbox):
    created = await create_ok(browser)
    sandbox.mark_paid(created["id"])
    response = await browser.post(f"{API}/{created['id']}/expire", headers=KEY)
    assert_stripe_error(response, 400, code="checkout_session_not_open")
    assert sandbox.sessions[created["id"]]["status"] == "complete"
    assert sandbox.sessions[created["id"]]["payment_status"] == "paid"


async def test_expire_unknown_session_is_404(browser):
    response = await browser.post(f"{API}/cs_test_nope/expire", headers=KEY)
    assert_stripe_error(response, 404, code="resource_missing")


async def test_session_past_expires_at_reads_as_expired(browser, sandbox):
    created = await create_ok(browser)
    sandbox.sessions[created["id"]]["expires_at"] = int(time.time()) - 1
    response = await browser.get(f"{API}/{created['id']}", headers=KEY)
    assert response.status_code == 200
    assert response.json()["status"] == "expired"
    assert response.json()["payment_status"] == "unpaid"
    assert response.json()["url"] is None
    pay = await browser.post(f"{created['url']}/pay")
    assert pay.status_code == 400
    assert sandbox.sessions[created["id"]]["payment_status"] == "unpaid"


# -- the hosted checkout page ------------------------------------------------------------------


async def test_hosted_page_shows_item_amount_and_buttons(browser):
    created = await create_ok(browser)
    page = await browser.get(created["url"])
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Borrowing «Dune»" in page.text
    assert "by F. Herbert" in page.text
    assert "$6.00 USD" in page.text
    assert f'<form method="post" action="/c/pay/{created["id"]}/pay">' in page.text
    assert f'<form method="post" action="/c/pay/{created["id"]}/cancel">' in page.text
    assert '<button class="pay">Pay $6.00</button>' in page.text
    assert '<button class="cancel">Cancel</button>' in page.text


async def test_hosted_page_escapes_html(browser):
    params = session_params()
    params["line_items"][0]["price_data"]["product_data"]["name"] = "<script>x()</script>"
    created = (await create(browser, params)).json()
    page = await browser.get(created["url"])
    assert page.status_code == 200
    assert "<script>x()</script>" not in page.text
    assert "&lt;script&gt;" in page.text


async def test_hosted_page_for_unknown_session_is_404(browser):
    page = await browser.get(f"{PAGES}/c/pay/cs_test_nope")
    assert page.status_code == 404
    assert "Unknown checkout session" in page.text


@pytest.mark.parametrize(
    ("mark", "sentence"),
    [
        pytest.param("mark_paid", "This session is paid.", id="paid"),
        pytest.param("mark_expired", "This session has expired", id="expired"),
    ],
)
async def test_hosted_page_of_a_final_session_shows_its_state_and_no_buttons(
    browser, sandbox, mark, sentence
):
    created = await create_ok(browser)
    getattr(sandbox, mark)(created["id"])
    page = await browser.get(created["url"])
    assert page.status_code == 200
    assert sentence in page.text
    assert "$6.00 USD" in page.text
    assert "<button" not in page.text
    assert "<form" not in page.text


async def test_hosted_page_keeps_each_date_on_one_line(browser):
    params = session_params()
    params["line_items"][0]["price_data"]["product_data"]["description"] = (
        "by Mikhail Bulgakov: 7 day(s), 2026-11-30 to 2026-12-07"
    )
    created = (await create(browser, params)).json()
    page = await browser.get(created["url"])
    assert (
        'by Mikhail Bulgakov: 7 day(s), <span class="nowrap">2026-11-30</span> '
        'to <span class="nowrap">2026-12-07</span>'
    ) in page.text
    assert re.search(r"\.nowrap \{ white-space: nowrap; \}", page.text)


async def test_pay_marks_paid_and_redirects_to_success_url(browser, sandbox):
    created = await create_ok(browser)
    response = await browser.post(f"{created['url']}/pay")
    assert response.status_code == 303
    location = response.headers["location"]
    assert location == SUCCESS.replace("{CHECKOUT_SESSION_ID}", created["id"])
    assert parse_qs(urlsplit(location).query)["session_id"] == [created["id"]]
    session = sandbox.sessions[created["id"]]
    assert session["status"] == "complete"
    assert session["payment_status"] == "paid"
    assert session["url"] is None
    api = await browser.get(f"{API}/{created['id']}", headers=KEY)
    assert api.json()["payment_status"] == "paid"

    # Pressing Pay again (double click) redirects again and stays paid.
    again = await browser.post(f"{created['url']}/pay")
    assert again.status_code == 303
    assert again.headers["location"] == location
    assert sandbox.sessions[created["id"]]["payment_status"] == "paid"


async def test_pay_on_expired_session_is_refused(browser, sandbox):
    created = await create_ok(browser)
    sandbox.mark_expired(created["id"])
    response = await browser.post(f"{created['url']}/pay")
    assert response.status_code == 400
    assert "location" not in response.headers
    assert sandbox.sessions[created["id"]]["status"] == "expired"
    assert sandbox.sessions[created["id"]]["payment_status"] == "unpaid"


@pytest.mark.parametrize("action", ["pay", "cancel"])
async def test_pay_or_cancel_unknown_session_is_404(browser, action):
    response = await browser.post(f"{PAGES}/c/pay/cs_test_nope/{action}")
    assert response.status_code == 404
    assert "location" not in response.headers


async def test_cancel_redirects_to_cancel_url_and_keeps_session_open(browser, sandbox):
    created = await create_ok(browser)
    response = await browser.post(f"{created['url']}/cancel")
    assert response.status_code == 303
    assert response.headers["location"] == CANCEL.replace("{CHECKOUT_SESSION_ID}", created["id"])
    session = sandbox.sessions[created["id"]]
    assert session["status"] == "open"
    assert session["payment_status"] == "unpaid"
    assert session["url"] == created["url"]


async def test_cancel_without_cancel_url_goes_to_success_url(browser):
    params = session_params()
    del params["cancel_url"]
    created = (await create(browser, params)).json()
    response = await browser.post(f"{created['url']}/cancel")
    assert response.status_code == 303
    assert response.headers["location"] == SUCCESS.replace("{CHECKOUT_SESSION_ID}", created["id"])


async def test_pages_need_no_api_key(browser):
    """The hosted page is the payer's browser: no secret key there."""
    created = await create_ok(browser)
    assert (await browser.get(created["url"])).status_code == 200
    assert (await browser.post(f"{created['url']}/pay")).status_code == 303


# -- signed events -----------------------------------------------------------------------------


async def test_signed_event_verifies_with_the_webhook_secret(browser, sandbox, settings):
    created = await create_ok(browser)
    session = sandbox.mark_paid(created["id"])
    payload, header = sandbox.signed_event("checkout.session.completed", session)
    event = stripe.Webhook.construct_event(payload, header, settings.STRIPE_WEBHOOK_SECRET)
    assert event.type == "checkout.session.completed"
    assert event.id.startswith("evt_")
    assert event.data.object.id == created["id"]
    assert event.data.object.payment_status == "paid"
    assert json.loads(payload)["data"]["object"]["metadata"] == {"payment_id": "7"}
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, header, "whsec_other")


def test_signed_events_have_distinct_ids(sandbox):
    session = {"id": "cs_test_x", "object": "checkout.session"}
    first, _ = sandbox.signed_event("checkout.session.expired", session)
    second, _ = sandbox.signed_event("checkout.session.expired", session)
    assert json.loads(first)["id"] != json.loads(second)["id"]


def test_signed_event_without_secret_is_an_error():
    bare = SandboxStripe(public_url=PAGES)
    with pytest.raises(RuntimeError):
        bare.signed_event("checkout.session.completed", {"id": "cs_test_x"})


# -- the official SDK against the sandbox (the app's gateway) ----------------------------------


async def test_gateway_creates_and_retrieves_through_the_sdk(app, stripe_mock, sandbox):
    gateway = app.state.stripe
    checkout = await gateway.create_checkout_session(
        payment_id=9,
        amount=Decimal("6.00"),
        product_name="Borrowing «Dune»",
        description="by F. Herbert",
        success_url=SUCCESS,
        cancel_url=CANCEL,
        idempotency_key="gateway-test-1",
    )
    assert checkout.id in sandbox.sessions
    assert checkout.url == f"{PAGES}/c/pay/{checkout.id}"
    assert checkout.status == "open"
    assert not checkout.is_paid
    expected_expiry = datetime.now(UTC) + timedelta(seconds=SESSION_LIFETIME_SECONDS)
    assert abs((checkout.expires_at - expected_expiry).total_seconds()) < 60
    assert sandbox.sessions[checkout.id]["amount_total"] == 600
    assert sandbox.sessions[checkout.id]["metadata"] == {"payment_id": "9"}

    sandbox.mark_paid(checkout.id)
    again = await gateway.retrieve_checkout_session(checkout.id)
    assert again is not None
    assert again.is_paid
    assert again.status == "complete"
    assert await gateway.retrieve_checkout_session("cs_test_nope") is None


async def test_gateway_expire_reports_final_state(app, stripe_mock, sandbox):
    gateway = app.state.stripe
    checkout = await gateway.create_checkout_session(
        payment_id=10,
        amount=Decimal("1.00"),
        product_name="x",
        description="y",
        success_url=SUCCESS,
        cancel_url=CANCEL,
        idempotency_key="gateway-test-2",
    )
    expired = await gateway.expire_checkout_session(checkout.id)
    assert expired is not None and expired.status == "expired"
    # Already expired: no exception, the current state.
    again = await gateway.expire_checkout_session(checkout.id)
    assert again is not None and again.status == "expired"
    assert await gateway.expire_checkout_session("cs_test_nope") is None


async def test_gateway_reports_sandbox_errors_as_unavailable(app, stripe_mock, sandbox):
    with pytest.raises(PaymentProviderUnavailableError):
        await app.state.stripe.create_checkout_session(
            payment_id=11,
            amount=Decimal("0.10"),  # under Stripe's minimum: the sandbox refuses it
            product_name="x",
            description="y",
            success_url=SUCCESS,
            cancel_url=CANCEL,
            idempotency_key="gateway-test-3",
        )
    assert sandbox.sessions == {}
