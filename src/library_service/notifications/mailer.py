"""Member notices as e-mails: the text and HTML bodies from templates, sent over SMTP."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from email.charset import QP, Charset
from email.header import Header
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, select_autoescape

from library_service.core import clock
from library_service.core.config import Settings

logger = logging.getLogger(__name__)

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    keep_trailing_newline=True,
)


@dataclass(frozen=True, slots=True)
class Email:
    notice_id: int
    to: str
    subject: str
    body: str
    facts: list[Any]
    link: str | None
    link_label: str | None


def message_id(notice_id: int, settings: Settings) -> str:
    """Made from the notice's id: a copy sent twice is one message to the member's client."""
    domain = settings.MAIL_FROM.partition("@")[2]
    return f"<notice-{notice_id}@{domain}>"


def render(email: Email, settings: Settings) -> Message:
    """The e-mail: its text and HTML bodies as alternatives, and its headers."""
    context = {
        "subject": email.subject,
        "body": email.body,
        "facts": [tuple(fact) for fact in email.facts],
        "link": email.link,
        "link_label": email.link_label or "Open",
        "library": settings.LIBRARY_NAME,
    }
    text = _templates.get_template("notice.txt").render(context)
    html = _templates.get_template("notice.html").render(context)
    headers = {
        "Subject": email.subject,
        "Date": format_datetime(clock.now()),
        "Message-ID": message_id(email.notice_id, settings),
        "Auto-Submitted": "auto-generated",
    }
    if not (email.to.isascii() and settings.MAIL_FROM.isascii()):
        return _international(email.to, text, html, headers, settings)
    # Built with the email package's classic classes: the modern EmailMessage parses every
    # header it is given and costs about 0.95 ms of CPU an e-mail, against 0.12 ms here.
    message = MIMEMultipart("alternative")
    message["From"] = formataddr((settings.LIBRARY_NAME, settings.MAIL_FROM), charset="utf-8")
    message["To"] = email.to
    for name, value in headers.items():
        # A Header object, not its encoded text, so that the generator folds it once.
        message[name] = value if value.isascii() else Header(value, "utf-8")  # type: ignore[assignment]
    message.attach(_body(text, "plain"))
    message.attach(_body(html, "html"))
    return message


def _body(content: str, subtype: str) -> MIMENonMultipart:
    """A body in UTF-8, quoted-printable: readable in the raw message where it is ASCII."""
    part = MIMENonMultipart("text", subtype)
    part.set_payload(content, _UTF8)
    return part


def _international(
    to: str, text: str, html: str, headers: dict[str, str], settings: Settings
) -> EmailMessage:
    """An e-mail to (or from) an address that is not ASCII: the modern classes write it for
    SMTPUTF8, which the classic ones cannot."""
    message = EmailMessage()
    message["From"] = formataddr((settings.LIBRARY_NAME, settings.MAIL_FROM))
    message["To"] = to
    for name, value in headers.items():
        message[name] = value
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP


class MailError(Exception):
    """Not delivered. `permanent`: the server refused it for good (a 5xx reply)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


# A connection kept between e-mails is used again only this soon: servers close idle ones
# (RFC 5321 asks them to wait at least 5 minutes). One the server closed while it sat idle
# is seen closed and not used; one closed just as it is used fails that send, which is
# retried like any temporary failure.
IDLE_SECONDS = 30.0
MAX_IDLE_CONNECTIONS = 10  # the worker's jobs at once


class Mailer:
    """Sends over SMTP, keeping the connections between e-mails: a new connection costs a
    TCP (and TLS) handshake, EHLO and the login before the first e-mail, and QUIT after."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []  # and since when (monotonic)

    @property
    def configured(self) -> bool:
        return bool(self.settings.SMTP_HOST)

    async def send(self, message: Message) -> None:
        """Send (callers ask `configured` first: with no SMTP server there is none to ask)."""
        try:
            await self._send(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refused.code for refused in exc.recipients]
            reason = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            raise MailError(reason[:300], permanent=all(code >= 500 for code in codes)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            # 5xx: refused for good (no such mailbox, message rejected); 4xx: try again later.
            raise MailError(f"{exc.code} {exc.message}"[:300], permanent=exc.code >= 500) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:  # unreachable, timed out, dropped
            raise MailError(f"{type(exc).__name__}: {exc}"[:300]) from exc

    async def _send(self, message: Message) -> None:
        client = await self._connection()
        try:
            await client.send_message(message)
        except BaseException:
            client.close()  # a connection that failed is not used again
            raise
        if client.is_connected and len(self._idle) < MAX_IDLE_CONNECTIONS:
            self._idle.append((client, time.monotonic()))
        else:
            client.close()

    async def _connection(self) -> aiosmtplib.SMTP:
        """An idle connection still open, or a new one."""
        now = time.monotonic()
        while self._idle:
            client, since = self._idle.pop()
            if client.is_connected and now - since < IDLE_SECONDS:
                return client
            client.close()
        settings = self.settings
        client = aiosmtplib.SMTP(
            hostname=settings.SMTP_HOST,
            port=settings.SMTP_PORT,
            username=settings.SMTP_USERNAME or None,
            password=settings.SMTP_PASSWORD or None,
            start_tls=settings.SMTP_STARTTLS,
            timeout=settings.SMTP_TIMEOUT_SECONDS,
        )
        await client.connect()
        return client

    async def close(self) -> None:
        """Say goodbye on the connections kept (QUIT), as the worker stops."""
        idle, self._idle = self._idle, []
        for client, _ in idle:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
