"""What members are told, written for them: each notice's subject, text, facts and link.

Other domains build a `Draft` here from plain data (no model of theirs comes in) and record
it with `MemberNoticeService` in the transaction of the event. The e-mail and the app both
show what the draft says.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from cryptography.fernet import Fernet, InvalidToken

from library_service.core.config import Settings
from library_service.notifications.messages import days, usd

HOLD_READY = "hold_ready"
HOLD_EXPIRED = "hold_expired"
HOLD_CANCELLED = "hold_cancelled"
DUE_SOON = "due_soon"
DUE_TODAY = "due_today"
OVERDUE = "overdue"
FINE = "fine"
PAYMENT_LINK = "payment_link"
RECEIPT = "receipt"
EXTENSION = "extension"
WELCOME = "welcome"
PASSWORD_RESET = "password_reset"  # noqa: S105 - a kind of notice
PASSWORD_CHANGED = "password_changed"  # noqa: S105 - a kind of notice
DEACTIVATED = "account_deactivated"
REACTIVATED = "account_reactivated"
KINDS = (
    HOLD_READY,
    HOLD_EXPIRED,
    HOLD_CANCELLED,
    DUE_SOON,
    DUE_TODAY,
    OVERDUE,
    FINE,
    PAYMENT_LINK,
    RECEIPT,
    EXTENSION,
    WELCOME,
    PASSWORD_RESET,
    PASSWORD_CHANGED,
    DEACTIVATED,
    REACTIVATED,
)
# Reminders a member may stop by e-mail (`email_reminders`); they stay in the app.
REMINDERS = frozenset({DUE_SOON, DUE_TODAY, OVERDUE})
# Where a one-time token goes in a link; filled in by the worker as it sends the e-mail.
TOKEN = "{token}"  # noqa: S105 - a placeholder


@dataclass(frozen=True, slots=True)
class Link:
    """The notice's button: `path` on the API (or an absolute URL, such as Stripe's page),
    `frontend` the page under FRONTEND_URL when one is set. Either may be None."""

    label: str
    path: str | None
    frontend: str | None


@dataclass(frozen=True, slots=True)
class Draft:
    kind: str
    subject: str
    body: str
    facts: tuple[tuple[str, str], ...] = ()
    link: Link | None = None
    # One notice per key, however often it is recorded (a reminder: loan, kind and day).
    dedupe_key: str | None = None

    @property
    def is_reminder(self) -> bool:
        return self.kind in REMINDERS


def resolve_link(
    path: str | None, frontend: str | None, settings: Settings, *, base_url: str = ""
) -> str | None:
    """The address a notice's button opens: the front end's page when FRONTEND_URL is set,
    else the API's own (on PUBLIC_BASE_URL, or `base_url`: the request's)."""
    if settings.FRONTEND_URL and frontend:
        return settings.FRONTEND_URL + frontend
    if path is None:
        return None
    if path.startswith(("http://", "https://")):
        return path
    base = (settings.PUBLIC_BASE_URL or base_url).rstrip("/")
    return base + path if base else None


# -- a one-time token on its way to the e-mail --------------------------------------------


def _fernet(secret_key: str) -> Fernet:
    key = hashlib.sha256(f"member-notice:{secret_key}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(token: str, secret_key: str) -> str:
    """Encrypt a password link's token for the outbox (erased once the e-mail is out)."""
    return _fernet(secret_key).encrypt(token.encode()).decode()


def unseal(sealed: str, secret_key: str) -> str | None:
    try:
        return _fernet(secret_key).decrypt(sealed.encode()).decode()
    except InvalidToken:  # SECRET_KEY changed since: the link cannot be made
        return None


# -- holds --------------------------------------------------------------------------------


def _book(title: str, author: str) -> str:
    return f"«{title}» by {author}"


def hold_ready(*, hold_id: int, book_id: int, title: str, author: str, until: date) -> Draft:
    return Draft(
        kind=HOLD_READY,
        subject=f"«{title}» is waiting for you",
        body=(
            f"A copy of {_book(title, author)} has been put aside for you. "
            f"Collect it at the desk by {until:%A, %d %B %Y}; after that it goes to the next "
            "member in line."
        ),
        facts=(("Book", _book(title, author)), ("Collect by", f"{until:%Y-%m-%d}")),
        link=Link("See the book", f"/api/books/{book_id}/", f"/holds/{hold_id}"),
    )


def hold_expired(*, book_id: int, title: str, author: str, until: date) -> Draft:
    return Draft(
        kind=HOLD_EXPIRED,
        subject=f"Your hold on «{title}» has expired",
        body=(
            f"The copy of {_book(title, author)} put aside for you was not collected by "
            f"{until:%Y-%m-%d}, so it has gone to the next member. You can place a new hold."
        ),
        facts=(("Book", _book(title, author)), ("Was kept until", f"{until:%Y-%m-%d}")),
        link=Link("See the book", f"/api/books/{book_id}/", f"/books/{book_id}"),
    )


def hold_cancelled(*, title: str, author: str) -> Draft:
    return Draft(
        kind=HOLD_CANCELLED,
        subject=f"Your hold on «{title}» was cancelled",
        body=(
            f"The library has withdrawn {_book(title, author)} from circulation, so your hold "
            "on it was cancelled. We are sorry for the disappointment."
        ),
        facts=(("Book", _book(title, author)),),
    )


# -- loans --------------------------------------------------------------------------------


def due_soon(*, borrowing_id: int, title: str, author: str, due: date, today: date) -> Draft:
    left = (due - today).days
    return Draft(
        kind=DUE_SOON,
        subject=f"«{title}» is due in {days(left)}",
        body=(
            f"Your loan of {_book(title, author)} is due back on {due:%A, %d %B %Y}. "
            "Return it by then, or extend the loan if nobody is waiting for it."
        ),
        facts=(("Book", _book(title, author)), ("Due", f"{due:%Y-%m-%d}")),
        link=Link("See the loan", None, f"/borrowings/{borrowing_id}"),
        dedupe_key=f"{DUE_SOON}:{borrowing_id}:{today:%Y-%m-%d}",
    )


def due_today(*, borrowing_id: int, title: str, author: str, due: date) -> Draft:
    return Draft(
        kind=DUE_TODAY,
        subject=f"«{title}» is due today",
        body=(
            f"Your loan of {_book(title, author)} is due back today. From tomorrow a fine "
            "is charged for every day late."
        ),
        facts=(("Book", _book(title, author)), ("Due", f"{due:%Y-%m-%d}")),
        link=Link("See the loan", None, f"/borrowings/{borrowing_id}"),
        dedupe_key=f"{DUE_TODAY}:{borrowing_id}:{due:%Y-%m-%d}",
    )


def overdue(
    *,
    borrowing_id: int,
    title: str,
    author: str,
    due: date,
    today: date,
    fine_so_far: Decimal | None,
) -> Draft:
    late = (today - due).days
    owed = (
        f"The fine so far is {usd(fine_so_far)}, and it grows every day until the book is back."
        if fine_so_far is not None
        else "No fine is charged yet, but one will be if it stays out much longer."
    )
    return Draft(
        kind=OVERDUE,
        subject=f"«{title}» is overdue by {days(late)}",
        body=f"Your loan of {_book(title, author)} was due back on {due:%Y-%m-%d}. {owed}",
        facts=(
            ("Book", _book(title, author)),
            ("Due", f"{due:%Y-%m-%d}"),
            ("Days late", str(late)),
            ("Fine so far", usd(fine_so_far) if fine_so_far is not None else "none yet"),
        ),
        link=Link("See the loan", None, f"/borrowings/{borrowing_id}"),
        dedupe_key=f"{OVERDUE}:{borrowing_id}:{today:%Y-%m-%d}",
    )


def fine(
    *,
    payment_id: int,
    title: str,
    author: str,
    amount: Decimal,
    days_late: int,
    checkout_url: str | None,
) -> Draft:
    return Draft(
        kind=FINE,
        subject=f"A fine of {usd(amount)} for «{title}»",
        body=(
            f"{_book(title, author)} came back {days(days_late)} late, so a fine of "
            f"{usd(amount)} was recorded. Until it is paid you cannot borrow, extend or place "
            "holds."
        ),
        facts=(
            ("Book", _book(title, author)),
            ("Days late", str(days_late)),
            ("Fine", usd(amount)),
        ),
        link=Link("Pay the fine", checkout_url, f"/payments/{payment_id}"),
    )


def payment_link(
    *, payment_id: int, title: str, amount: Decimal, what: str, checkout_url: str
) -> Draft:
    """A payment's checkout link, sent on request (the desk's "send the payment link")."""
    return Draft(
        kind=PAYMENT_LINK,
        subject=f"Your payment link: {usd(amount)} for «{title}»",
        body=f"Here is the link to pay the {what} of {usd(amount)} for «{title}» by card.",
        facts=(("For", f"{what}, «{title}»"), ("Amount", usd(amount))),
        link=Link("Pay now", checkout_url, f"/payments/{payment_id}"),
    )


def receipt(
    *, payment_id: int, title: str, amount: Decimal, what: str, how: str, paid_at: datetime
) -> Draft:
    return Draft(
        kind=RECEIPT,
        subject=f"Receipt: {usd(amount)} for «{title}»",
        body=f"Thank you: we received your payment of {usd(amount)}.",
        facts=(
            ("Amount", usd(amount)),
            ("For", f"{what}, «{title}»"),
            ("Paid by", how),
            ("When", f"{paid_at:%Y-%m-%d %H:%M} UTC"),
            ("Payment", f"#{payment_id}"),
        ),
        link=Link("See the payment", None, f"/payments/{payment_id}"),
    )


def extension(
    *,
    payment_id: int,
    title: str,
    author: str,
    due: date,
    fee: Decimal,
    checkout_url: str | None,
) -> Draft:
    return Draft(
        kind=EXTENSION,
        subject=f"«{title}» is now due on {due:%Y-%m-%d}",
        body=(
            f"Your loan of {_book(title, author)} is extended to {due:%A, %d %B %Y}. "
            f"The added days cost {usd(fee)}."
        ),
        facts=(
            ("Book", _book(title, author)),
            ("New due date", f"{due:%Y-%m-%d}"),
            ("Fee", usd(fee)),
        ),
        link=Link("Pay the fee", checkout_url, f"/payments/{payment_id}"),
    )


# -- the account --------------------------------------------------------------------------

_SET_PASSWORD_PAGE = "/api/users/password-reset/page/?token=" + TOKEN
_FRONTEND_RESET = "/reset-password?token=" + TOKEN


def welcome(*, name: str, library: str) -> Draft:
    return Draft(
        kind=WELCOME,
        subject=f"Welcome to {library}",
        body=(
            f"Hello{' ' + name if name else ''}, your account is ready: browse the catalogue, "
            "borrow books and place holds on the ones out on loan."
        ),
    )


def welcome_enrolled(*, name: str, library: str, valid_days: int) -> Draft:
    return Draft(
        kind=WELCOME,
        subject=f"Welcome to {library}: choose your password",
        body=(
            f"Hello{' ' + name if name else ''}, the library has opened an account for you. "
            f"Choose your password with the link below; it works once, for {days(valid_days)}."
        ),
        link=Link("Choose a password", _SET_PASSWORD_PAGE, _FRONTEND_RESET),
    )


def password_reset(*, valid_minutes: int) -> Draft:
    return Draft(
        kind=PASSWORD_RESET,
        subject="Reset your password",
        body=(
            "Someone (we hope you) asked to reset the password of your library account. "
            f"The link below works once, for {valid_minutes} minutes. If it was not you, "
            "ignore this e-mail: your password stays as it is."
        ),
        link=Link("Choose a new password", _SET_PASSWORD_PAGE, _FRONTEND_RESET),
    )


def password_changed() -> Draft:
    return Draft(
        kind=PASSWORD_CHANGED,
        subject="Your password was changed",
        body=(
            "The password of your library account was just changed, and every device signed "
            "in with the old one was signed out. If this was not you, reset it at once and "
            "tell the library."
        ),
    )


def deactivated(*, library: str) -> Draft:
    return Draft(
        kind=DEACTIVATED,
        subject="Your library account was deactivated",
        body=(
            f"{library} has deactivated your account: you can no longer sign in. "
            "Ask at the desk if you think this is a mistake."
        ),
    )


def reactivated(*, library: str) -> Draft:
    return Draft(
        kind=REACTIVATED,
        subject="Your library account is active again",
        body=f"{library} has reactivated your account: you can sign in again.",
    )
