"""The local run's mail catcher: a real SMTP server (aiosmtpd) that keeps every message it
accepts as an .eml file, and a small web page to read them, as the sandbox Stripe shows
checkout. The tests send to it too; `refuse` and `defer` make it answer 550 or 451 for an
address, as a real server would."""

from __future__ import annotations

import email
import email.policy
import html
import itertools
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from library_service.dev.embedded import free_port


@dataclass(frozen=True, slots=True)
class Caught:
    name: str  # the file's name, which orders them
    message: EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return str(part.get_content()) if part is not None else ""

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return str(part.get_content()) if part is not None else ""


class _Handler:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.lower() in self.mailbox.refuse:
            return "550 5.1.1 No such mailbox here"
        if address.lower() in self.mailbox.defer:
            return "451 4.7.1 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.mailbox.peers.append(session.peer)  # which connection brought it
        self.mailbox.keep(content)
        return "250 Message accepted for delivery"


class Mailbox:
    def __init__(self, folder: Path, *, port: int = 0) -> None:
        self.folder = folder
        self.port = port
        self.refuse: set[str] = set()
        self.defer: set[str] = set()
        self.peers: list[Any] = []  # the client's address of each message accepted
        self._controller: Controller | None = None
        self._lock = threading.Lock()
        self._count = itertools.count()

    # -- the SMTP server ------------------------------------------------------------------

    def start(self) -> Mailbox:
        self.folder.mkdir(parents=True, exist_ok=True)
        # Port 0: a free one, chosen now and kept, so the server comes back on it.
        self.port = self.port or free_port()
        controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def keep(self, content: bytes) -> None:
        with self._lock:
            name = f"{time.time_ns():020d}-{next(self._count):06d}.eml"
            (self.folder / name).write_bytes(content)

    # -- reading ----------------------------------------------------------------------------

    def messages(self) -> list[Caught]:
        """Every message kept, oldest first."""
        return [self._read(path) for path in sorted(self.folder.glob("*.eml"))]

    def message(self, name: str) -> Caught | None:
        path = self.folder / name
        if "/" in name or not name.endswith(".eml") or not path.exists():
            return None
        return self._read(path)

    def clear(self) -> None:
        for path in self.folder.glob("*.eml"):
            path.unlink()
        self.peers.clear()

    @staticmethod
    def _read(path: Path) -> Caught:
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return Caught(path.name, parsed)

    # -- the web page -----------------------------------------------------------------------

    @property
    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/", self._list_page), Route("/messages/{name}", self._message_page)]
        )

    async def _list_page(self, request: Request) -> Response:
        rows = "".join(
            f"<tr><td>{html.escape(str(m.message['Date']))}</td>"
            f"<td>{html.escape(str(m.message['To']))}</td>"
            f'<td><a href="/messages/{m.name}">'
            f"{html.escape(str(m.message['Subject']))}</a></td></tr>"
            for m in reversed(self.messages())
        )
        body = (
            "<h1>Local mailbox</h1><p>Every e-mail the library sent in this local run, newest "
            f"first (kept in {html.escape(str(self.folder))}).</p>"
            + (
                f"<table><tr><th>Date</th><th>To</th><th>Subject</th></tr>{rows}</table>"
                if rows
                else "<p>No e-mail yet.</p>"
            )
        )
        return HTMLResponse(_page("Local mailbox", body))

    async def _message_page(self, request: Request) -> Response:
        caught = self.message(request.path_params["name"])
        if caught is None:
            return HTMLResponse(_page("Not found", "<p>No such message.</p>"), status_code=404)
        headers = "".join(
            f"<dt>{name}</dt><dd>{html.escape(str(caught.message[name]))}</dd>"
            for name in ("From", "To", "Subject", "Date", "Message-ID")
        )
        # The HTML body in a sandboxed frame (no scripts); its links open in this window.
        framed = '<base target="_top">' + caught.html
        body = (
            f'<p><a href="/">← all messages</a></p><dl>{headers}</dl>'
            f'<iframe title="HTML body" sandbox="allow-top-navigation-by-user-activation" '
            f'srcdoc="{html.escape(framed)}"></iframe>'
            f"<h2>Text body</h2><pre>{html.escape(caught.text)}</pre>"
        )
        return HTMLResponse(_page(str(caught.message["Subject"]), body))


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
        "</title><style>body{font:15px/1.5 system-ui,sans-serif;margin:2rem;color:#222}"
        "table{border-collapse:collapse}td,th{padding:.3rem .8rem;border-bottom:1px solid #ddd;"
        "text-align:left}dt{color:#666}dd{margin:0 0 .4rem}iframe{width:100%;height:28rem;"
        "border:1px solid #ddd;border-radius:6px}pre{white-space:pre-wrap;background:#f6f6f6;"
        f"padding:1rem}}</style></head><body>{body}</body></html>"
    )
