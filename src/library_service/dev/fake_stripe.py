"""A sandbox of Stripe's Checkout Sessions API, for the local run and the tests.

It speaks enough of Stripe's HTTP API for the official SDK (form-encoded requests, JSON
answers, Stripe-shaped errors, idempotency keys) and hosts its own checkout page with
**Pay** and **Cancel** buttons. When given a webhook URL and secret it also delivers signed
`checkout.session.completed` / `checkout.session.expired` events.

Never used with a real key or in production: `library-service run` serves it only when
`STRIPE_SECRET_KEY` is unset and the environment is not production.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl

import httpx
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

logger = logging.getLogger(__name__)

SESSION_LIFETIME_SECONDS = 24 * 60 * 60
MIN_AMOUNT_CENTS = 50
PLACEHOLDER = "{CHECKOUT_SESSION_ID}"


def parse_form(body: bytes) -> dict[str, Any]:
    """Decode Stripe's bracket notation (`line_items[0][price_data][currency]=usd`)."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body.decode(), keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    result: dict[str, Any] = _lists(root)
    return result


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(key.isdigit() for key in node):
        return [_lists(node[key]) for key in sorted(node, key=int)]
    return {key: _lists(value) for key, value in node.items()}


def stripe_error(
    status: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    error_type: str = "invalid_request_error",
) -> JSONResponse:
    error: dict[str, Any] = {"type": error_type, "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    return JSONResponse({"error": error}, status_code=status)


class SandboxStripe:
    def __init__(
        self,
        *,
        public_url: str,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> None:
        self.public_url = public_url.rstrip("/")
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.sessions: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, Any]]] = []  # (method, path, params)
        self._idempotent: dict[str, tuple[str, dict[str, Any]]] = {}
        self._webhook_client: httpx.AsyncClient | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/checkout/sessions", self._create, methods=["POST"]),
                Route("/v1/checkout/sessions/{session_id}", self._retrieve, methods=["GET"]),
                Route("/v1/checkout/sessions/{session_id}/expire", self._expire, methods=["POST"]),
                Route("/c/pay/{session_id}", self._checkout_page, methods=["GET"]),
                Route("/c/pay/{session_id}/pay", self._pay, methods=["POST"]),
                Route("/c/pay/{session_id}/cancel", self._cancel, methods=["POST"]),
            ]
        )

    # -- state changes, also callable directly by tests ------------------------------------

    def reset(self) -> None:
        self.sessions.clear()
        self.requests.clear()
        self._idempotent.clear()

    def mark_paid(self, session_id: str) -> dict[str, Any]:
        session = self.sessions[session_id]
        session.update(status="complete", payment_status="paid", url=None)
        return session

    def mark_expired(self, session_id: str) -> dict[str, Any]:
        session = self.sessions[session_id]
        session.update(status="expired", url=None)
        return session

    def signed_event(self, event_type: str, session: dict[str, Any]) -> tuple[bytes, str]:
        """An event body and its `Stripe-Signature` header, as Stripe would send them."""
        if not self.webhook_secret:
            raise RuntimeError("no webhook secret configured")
        event = {
            "id": "evt_" + secrets.token_hex(12),
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "livemode": False,
            "api_version": stripe.api_version,
            "data": {"object": session},
        }
        payload = json.dumps(event)
        header = stripe.WebhookSignature.generate_signature_header(payload, self.webhook_secret)
        return payload.encode(), header

    # -- the API -----------------------------------------------------------------------------

    async def _authorized(self, request: Request) -> Response | None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not key.startswith("sk_test_"):
            return stripe_error(
                401, "Invalid API Key provided.", error_type="invalid_request_error"
            )
        return None

    async def _create(self, request: Request) -> Response:
        if (denied := await self._authorized(request)) is not None:
            return denied
        body = await request.body()
        params = parse_form(body)
        self.requests.append(("POST", request.url.path, params))
        key = request.headers.get("idempotency-key")
        fingerprint = hashlib.sha256(body).hexdigest()
        if key and key in self._idempotent:
            previous_fingerprint, previous = self._idempotent[key]
            if previous_fingerprint != fingerprint:
                return stripe_error(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters.",
                    error_type="idempotency_error",
                )
            return JSONResponse(previous)
        problem = self._invalid(params)
        if problem is not None:
            return stripe_error(400, problem[1], param=problem[0], code="parameter_invalid")

        session_id = "cs_test_" + secrets.token_urlsafe(24).replace("-", "a").replace("_", "b")
        item = params["line_items"][0]
        amount = int(item["price_data"]["unit_amount"]) * int(item.get("quantity", 1))
        now = int(time.time())
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "payment",
            "status": "open",
            "payment_status": "unpaid",
            "amount_total": amount,
            "currency": item["price_data"]["currency"],
            "url": f"{self.public_url}/c/pay/{session_id}",
            "success_url": params["success_url"],
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata", {}),
            "created": now,
            "expires_at": now + SESSION_LIFETIME_SECONDS,
            "livemode": False,
            "payment_intent": None,
            "line_items_preview": {
                "name": item["price_data"]["product_data"]["name"],
                "description": item["price_data"]["product_data"].get("description", ""),
            },
        }
        self.sessions[session_id] = session
        if key:
            self._idempotent[key] = (fingerprint, session)
        return JSONResponse(session)

    @staticmethod
    def _invalid(params: dict[str, Any]) -> tuple[str, str] | None:
        if params.get("mode") != "payment":
            return "mode", "This sandbox supports mode=payment only."
        if not params.get("success_url"):
            return "success_url", "Missing required param: success_url."
        items = params.get("line_items")
        if not isinstance(items, list) or len(items) != 1:
            return "line_items", "Exactly one line item is supported."
        price = items[0].get("price_data", {})
        if price.get("currency") != "usd":
            return "line_items[0][price_data][currency]", "Only usd is supported."
        amount = price.get("unit_amount", "")
        if not amount.isdigit() or int(amount) < MIN_AMOUNT_CENTS:
            return (
                "line_items[0][price_data][unit_amount]",
                "Amount must be at least $0.50 usd.",
            )
        if not price.get("product_data", {}).get("name"):
            return "line_items[0][price_data][product_data][name]", "Missing product name."
        return None

    def _lookup(self, request: Request) -> dict[str, Any] | Response:
        session_id = request.path_params["session_id"]
        session = self.sessions.get(session_id)
        if session is None:
            return stripe_error(
                404,
                f"No such checkout.session: '{session_id}'",
                code="resource_missing",
                param="session",
            )
        if session["status"] == "open" and session["expires_at"] <= time.time():
            self.mark_expired(session_id)
        return session

    async def _retrieve(self, request: Request) -> Response:
        if (denied := await self._authorized(request)) is not None:
            return denied
        self.requests.append(("GET", request.url.path, {}))
        session = self._lookup(request)
        return session if isinstance(session, Response) else JSONResponse(session)

    async def _expire(self, request: Request) -> Response:
        if (denied := await self._authorized(request)) is not None:
            return denied
        self.requests.append(("POST", request.url.path, {}))
        session = self._lookup(request)
        if isinstance(session, Response):
            return session
        if session["status"] != "open":
            return stripe_error(
                400,
                f'Only Checkout Sessions with a status in ["open"] can be expired. '
                f'This Checkout Session has a status of "{session["status"]}".',
                code="checkout_session_not_open",
            )
        self.mark_expired(session["id"])
        await self._deliver("checkout.session.expired", session)
        return JSONResponse(session)

    # -- the hosted checkout page --------------------------------------------------------

    async def _checkout_page(self, request: Request) -> Response:
        session = self._lookup(request)
        if isinstance(session, Response):
            return HTMLResponse("<h1>Unknown checkout session</h1>", status_code=404)
        item = session["line_items_preview"]
        amount = f"${session['amount_total'] / 100:.2f}"
        action = f"/c/pay/{session['id']}"
        state = {
            "open": "",
            "complete": "<p class=done>This session is paid.</p>",
            "expired": "<p class=done>This session has expired.</p>",
        }[session["status"]]
        disabled = "" if session["status"] == "open" else " disabled"
        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sandbox checkout</title>
<style>
 body {{ font-family: system-ui, sans-serif; max-width: 28rem; margin: 4rem auto; color: #222; }}
 .card {{ border: 1px solid #ddd; border-radius: 12px; padding: 1.5rem 2rem; }}
 .amount {{ font-size: 2rem; font-weight: 600; margin: .5rem 0 1.5rem; }}
 button {{ font-size: 1rem; padding: .6rem 1.4rem; border-radius: 8px; border: 0; }}
 .pay {{ background: #635bff; color: white; }} .cancel {{ background: #eee; }}
 .note {{ color: #888; font-size: .85rem; }} .done {{ color: #0a7; }}
 form {{ display: inline; }}
</style></head>
<body><div class="card">
 <p class="note">Sandbox payment: no card, no money moves.</p>
 <h2>{html.escape(item["name"])}</h2>
 <p>{html.escape(item["description"])}</p>
 <div class="amount">{amount} USD</div>
 {state}
 <form method="post" action="{action}/pay">
  <button class="pay"{disabled}>Pay {amount}</button></form>
 <form method="post" action="{action}/cancel"><button class="cancel">Cancel</button></form>
</div></body></html>"""
        return HTMLResponse(page)

    async def _pay(self, request: Request) -> Response:
        session = self._lookup(request)
        if isinstance(session, Response):
            return session
        if session["status"] == "expired":
            return HTMLResponse("<h1>This checkout session has expired.</h1>", status_code=400)
        if session["status"] == "open":
            self.mark_paid(session["id"])
            await self._deliver("checkout.session.completed", session)
        return RedirectResponse(
            session["success_url"].replace(PLACEHOLDER, session["id"]), status_code=303
        )

    async def _cancel(self, request: Request) -> Response:
        session = self._lookup(request)
        if isinstance(session, Response):
            return session
        target = session["cancel_url"] or session["success_url"]
        return RedirectResponse(target.replace(PLACEHOLDER, session["id"]), status_code=303)

    async def _deliver(self, event_type: str, session: dict[str, Any]) -> None:
        if not (self.webhook_url and self.webhook_secret):
            return
        if self._webhook_client is None:  # one keep-alive client, made on the serving loop
            self._webhook_client = httpx.AsyncClient(timeout=5)
        payload, header = self.signed_event(event_type, session)
        try:
            response = await self._webhook_client.post(
                self.webhook_url,
                content=payload,
                headers={"Stripe-Signature": header, "Content-Type": "application/json"},
            )
            logger.info("sandbox webhook %s -> %s", event_type, response.status_code)
        except httpx.HTTPError as exc:  # Stripe would retry; the success redirect fulfils too
            logger.warning("sandbox webhook %s failed: %r", event_type, exc)
