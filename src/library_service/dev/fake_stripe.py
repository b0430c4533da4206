"""A sandbox of Stripe's Checkout Sessions API, for the local run and the tests.

It speaks enough of Stripe's HTTP API for the official SDK (form-encoded requests, JSON
answers, Stripe-shaped errors, idempotency keys) and hosts its own checkout page with
**Pay** and **Cancel** buttons. When given a webhook URL and secret it also delivers signed
`checkout.session.completed` / `checkout.session.expired` events. Given a file, it keeps its
sessions there, so that a payment link still works after a restart of the local run.

Never used with a real key or in production: `library-service run` serves it only when
`STRIPE_SECRET_KEY` is unset and the environment is not production.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import os
import re
import secrets
import time
from pathlib import Path
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
IDEMPOTENCY_KEY_LIFETIME_SECONDS = 24 * 60 * 60  # as long as Stripe remembers a key
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


class SessionJournal:
    """The sandbox's sessions and idempotency keys in a file, kept across restarts.

    JSON lines, appended on every change (a session's whole new state, or a key): a write is
    one short append however many sessions there are. Loading replays the lines, the last
    state of a session winning, skips a line cut short by a crash, and rewrites the file
    compacted, without the keys older than Stripe keeps them.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """The sessions by id, and the idempotency keys with their entries."""
        sessions: dict[str, dict[str, Any]] = {}
        keys: dict[str, dict[str, Any]] = {}
        for record in self._records():
            if "session" in record:
                sessions[record["session"]["id"]] = record["session"]
            elif "key" in record:
                keys[record.pop("key")] = record
        oldest = time.time() - IDEMPOTENCY_KEY_LIFETIME_SECONDS
        keys = {key: entry for key, entry in keys.items() if entry["created"] >= oldest}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        compacted = self.path.with_name(self.path.name + ".tmp")
        compacted.write_text(_json_lines(_records_of(sessions, keys)), encoding="utf-8")
        os.replace(compacted, self.path)  # a crash leaves the old file or the new, never half
        return sessions, keys

    def append(self, records: list[dict[str, Any]]) -> None:
        with self.path.open("a", encoding="utf-8") as file:
            file.write(_json_lines(records))

    def _records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        records = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:  # the last line, cut short by a crash
                continue
        return records


def _records_of(
    sessions: dict[str, dict[str, Any]], keys: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    return [{"session": session} for session in sessions.values()] + [
        {"key": key, **entry} for key, entry in keys.items()
    ]


def _json_lines(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


class SandboxStripe:
    def __init__(
        self,
        *,
        public_url: str,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        sessions_file: Path | None = None,
    ) -> None:
        """`sessions_file`: where sessions outlive the process; None keeps them in memory."""
        self.public_url = public_url.rstrip("/")
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.journal = SessionJournal(sessions_file) if sessions_file else None
        self.sessions: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, Any]]] = []  # (method, path, params)
        # Idempotency key -> {"fingerprint", "session_id", "created"}.
        self._idempotent: dict[str, dict[str, Any]] = {}
        if self.journal is not None:
            self.sessions, self._idempotent = self.journal.load()
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
        return self._update(session_id, status="complete", payment_status="paid", url=None)

    def mark_expired(self, session_id: str) -> dict[str, Any]:
        return self._update(session_id, status="expired", url=None)

    def _update(self, session_id: str, **changes: Any) -> dict[str, Any]:
        session = self.sessions[session_id]
        session.update(changes)
        self._persist({"session": session})
        return session

    def _remember(self, session: dict[str, Any], *, key: str | None, fingerprint: str) -> None:
        self.sessions[session["id"]] = session
        records = [{"session": session}]
        if key:
            entry = {"fingerprint": fingerprint, "session_id": session["id"]}
            self._idempotent[key] = entry | {"created": session["created"]}
            records.append({"key": key} | self._idempotent[key])
        self._persist(*records)

    def _persist(self, *records: dict[str, Any]) -> None:
        if self.journal is not None:
            self.journal.append(list(records))

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
            previous = self._idempotent[key]
            if previous["fingerprint"] != fingerprint:
                return stripe_error(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters.",
                    error_type="idempotency_error",
                )
            return JSONResponse(self.sessions[previous["session_id"]])
        problem = self._invalid(params)
        if problem is not None:
            return stripe_error(400, problem[1], param=problem[0], code="parameter_invalid")

        session = self._new_session(params)
        self._remember(session, key=key, fingerprint=fingerprint)
        return JSONResponse(session)

    def _new_session(self, params: dict[str, Any]) -> dict[str, Any]:
        session_id = "cs_test_" + secrets.token_urlsafe(24).replace("-", "a").replace("_", "b")
        item = params["line_items"][0]
        amount = int(item["price_data"]["unit_amount"]) * int(item.get("quantity", 1))
        now = int(time.time())
        return {
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
        return HTMLResponse(checkout_page(session))

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


# -- the hosted checkout page's HTML -------------------------------------------------------------

CHECKOUT_STYLE = """
 body { font-family: system-ui, sans-serif; max-width: 28rem; margin: 4rem auto; padding: 0 1rem;
        color: #222; }
 .card { border: 1px solid #ddd; border-radius: 12px; padding: 1.5rem 2rem; }
 .amount { font-size: 2rem; font-weight: 600; margin: .5rem 0 1.5rem; white-space: nowrap; }
 .nowrap { white-space: nowrap; }
 button { font-size: 1rem; padding: .6rem 1.4rem; border-radius: 8px; border: 0; cursor: pointer; }
 .pay { background: #635bff; color: white; } .cancel { background: #eee; }
 .note { color: #888; font-size: .85rem; }
 .state { font-weight: 600; } .paid { color: #0a7; } .expired { color: #b42; }
 .actions { display: flex; flex-wrap: wrap; gap: .5rem; }
"""
# What a session that can no longer be paid says instead of the buttons.
FINAL_STATES = {
    "complete": ("paid", "This session is paid."),
    "expired": ("expired", "This session has expired; it can no longer be paid."),
}
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def checkout_page(session: dict[str, Any]) -> str:
    """The page the payer sees: the item, the amount, and Pay and Cancel while it is open."""
    item = session["line_items_preview"]
    amount = f"${session['amount_total'] / 100:.2f}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sandbox checkout</title><style>{CHECKOUT_STYLE}</style></head>
<body><div class="card">
 <p class="note">Sandbox payment: no card, no money moves.</p>
 <h2>{html.escape(item["name"])}</h2>
 <p class="detail">{_unbroken_dates(item["description"])}</p>
 <div class="amount">{amount} USD</div>
 {_actions(session, amount)}
</div></body></html>"""


def _actions(session: dict[str, Any], amount: str) -> str:
    if session["status"] in FINAL_STATES:
        css_class, sentence = FINAL_STATES[session["status"]]
        return f'<p class="state {css_class}">{sentence}</p>'
    action = f"/c/pay/{session['id']}"
    return (
        '<div class="actions">\n'
        f'  <form method="post" action="{action}/pay">'
        f'<button class="pay">Pay {amount}</button></form>\n'
        f'  <form method="post" action="{action}/cancel">'
        '<button class="cancel">Cancel</button></form>\n </div>'
    )


def _unbroken_dates(text: str) -> str:
    """Escaped text whose dates never break across lines at their hyphens."""
    return ISO_DATE.sub(lambda date: f'<span class="nowrap">{date[0]}</span>', html.escape(text))
