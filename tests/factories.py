"""What the tests arrange and read back, shared by every domain.

- `Factory` (the `factory` fixture): users and books made straight in the database;
  borrowings through the API (`factory.borrow`, `factory.return_book`), so the real code
  runs, or straight in the database for a state the API cannot make quickly (a borrowing
  from 30 days ago, an overdue or a paid one); `pay`: Pay pressed on Stripe's page.
- `on_day(n)`: the library clock stopped `n` days after day 0 (2026-03-01, noon UTC).
- `fetch`, `count`, `inventory`, `payments_of`, `snapshot`: rows read back;
  `assert_error`: the error envelope every refusal answers with.
- `StripeDown`, `post_event`, `checkout_requests`: Stripe failing, Stripe's webhook, and what
  the SDK sent to the sandbox.
- Circulation: `factory.hold` (straight in the database), `factory.place_hold`,
  `factory.cancel_hold`, `factory.extend` (through the API), `expire_holds` (the worker's
  job), `holds_of`, `copies`, `notification_texts`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from collections.abc import Awaitable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import asyncpg
import asyncpg.prepared_stmt
import httpx
import respx
from sqlalchemy import func, select, text

from library_service.core import clock
from library_service.core.config import Settings
from library_service.core.db import Database
from library_service.dev.fake_stripe import SandboxStripe
from library_service.holds.tasks import expire_uncollected_holds
from library_service.models import (
    AuditEntry,
    Book,
    Borrowing,
    Hold,
    MemberNotice,
    Notification,
    Payment,
    User,
)
from library_service.notifications.mailer import Mailer
from library_service.notifications.tasks import deliver_member_notice
from library_service.services import Services
from library_service.users.security import create_token, hash_password

M = TypeVar("M")

# -- the library clock --------------------------------------------------------------------------

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)  # day 0, noon UTC (the suite's library time zone)
TODAY = NOW.date()


def day(n: int) -> date:
    """The library date `n` days after day 0."""
    return TODAY + timedelta(days=n)


def on_day(n: int) -> contextlib.AbstractContextManager[None]:
    """Stop the library clock at noon, `n` days after day 0."""
    return clock.frozen(NOW + timedelta(days=n))


def _on(n: int | None) -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext() if n is None else on_day(n)


# The settings production must have, for tests of what production does.
PRODUCTION = {
    "ENVIRONMENT": "production",
    "SECRET_KEY": "x" * 48,
    "DATABASE_URL": "postgresql://library@db/library",
    "REDIS_URL": "redis://redis:6379/0",
    "STRIPE_SECRET_KEY": "sk_live_123",
    "STRIPE_WEBHOOK_SECRET": "whsec_123",
    "PUBLIC_BASE_URL": "https://library.example.com",
}


# -- the factory ------------------------------------------------------------------------------

PASSWORD = "password123"  # every factory user's, unless a test gives another
# A valid body for POST /api/books/.
BOOK_FIELDS: dict[str, Any] = {
    "title": "Emma",
    "author": "Jane Austen",
    "cover": "HARD",
    "inventory": 3,
    "daily_fee": "1.50",
}
_emails = itertools.count(1)


class Factory:
    """A test's starting state: users and books made straight in the database; borrowings
    made through the API (the real code runs), or straight in the database for a state the
    API cannot make quickly. Those leave the book's inventory as it is: the test says what it
    needs."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def user(self, *, is_staff: bool = False, is_active: bool = True, **fields: Any) -> User:
        password = fields.pop("password", PASSWORD)
        email = fields.pop("email", f"user{next(_emails)}@example.com")
        async with self.db.sessionmaker() as session, session.begin():
            user = User(
                email=email,
                hashed_password=await hash_password(password, self.settings),
                is_staff=is_staff,
                is_active=is_active,
                **fields,
            )
            session.add(user)
        return user

    async def member(self, **fields: Any) -> User:
        return await self.user(**fields)

    async def staff(self, **fields: Any) -> User:
        return await self.user(is_staff=True, **fields)

    async def book(self, **fields: Any) -> Book:
        [book] = await self.books([fields])
        return book

    async def books(self, rows: list[dict[str, Any]]) -> list[Book]:
        """Several books in one transaction; each row overrides the defaults."""
        defaults: dict[str, Any] = {
            "title": "Pride and Prejudice",
            "author": "Jane Austen",
            "cover": "SOFT",
            "inventory": 5,
            "daily_fee": Decimal("1.50"),
        }
        books = [Book(**{**defaults, **row}) for row in rows]
        async with self.db.sessionmaker() as session, session.begin():
            session.add_all(books)
        return books

    def auth(self, user: User) -> dict[str, str]:
        return {"Authorization": f"Bearer {create_token(user.id, 'access', self.settings)}"}

    # -- through the API, so the real code runs --------------------------------------------

    async def borrow(
        self,
        client: httpx.AsyncClient,
        who: User | dict[str, str],
        book: Book | int,
        *,
        days: int = 4,
        until: date | None = None,
        on: int | None = None,
        **extra: Any,
    ) -> httpx.Response:
        """POST /api/borrowings/ as `who` (a user, or the headers to send) until `until`, or
        `days` after the clock's date (UTC, the suite's library time zone); with `on`, on
        that day after day 0."""
        book_id = book if isinstance(book, int) else book.id
        with _on(on):
            until = until or clock.now().date() + timedelta(days=days)
            payload = {"book": book_id, "expected_return_date": until.isoformat(), **extra}
            return await client.post("/api/borrowings/", json=payload, headers=self._as(who))

    async def borrow_ok(
        self,
        client: httpx.AsyncClient,
        who: User | dict[str, str],
        book: Book | int,
        **options: Any,
    ) -> dict[str, Any]:
        """A borrowing through the API (see `borrow`); its body."""
        response = await self.borrow(client, who, book, **options)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def return_book(
        self,
        client: httpx.AsyncClient,
        who: User | dict[str, str],
        borrowing_id: int,
        *,
        on: int | None = None,
    ) -> httpx.Response:
        """POST /api/borrowings/{id}/return/ as `who`; with `on`, on that day after day 0."""
        with _on(on):
            url = f"/api/borrowings/{borrowing_id}/return/"
            return await client.post(url, headers=self._as(who))

    async def borrowed(
        self,
        client: httpx.AsyncClient,
        *,
        member: User | None = None,
        days: int = 4,
        **book_fields: Any,
    ) -> tuple[User, dict[str, Any]]:
        """A member (a new one unless given) who borrowed a new book through the API on
        day 0, for `days` days: the member and the borrowing's body (its fee PENDING)."""
        member = member or await self.member()
        book = await self.book(**book_fields)
        return member, await self.borrow_ok(client, member, book, days=days, on=0)

    async def renew(
        self, client: httpx.AsyncClient, who: User | dict[str, str], payment_id: int
    ) -> httpx.Response:
        """POST /api/payments/{id}/renew/ as `who`: a new Checkout Session for the payment."""
        return await client.post(f"/api/payments/{payment_id}/renew/", headers=self._as(who))

    async def extend(
        self,
        client: httpx.AsyncClient,
        who: User | dict[str, str],
        borrowing_id: int,
        until: date,
        *,
        on: int | None = None,
    ) -> httpx.Response:
        """POST /api/borrowings/{id}/extend/ as `who`, to `until`; with `on`, on that day."""
        with _on(on):
            url = f"/api/borrowings/{borrowing_id}/extend/"
            payload = {"expected_return_date": until.isoformat()}
            return await client.post(url, json=payload, headers=self._as(who))

    async def place_hold(
        self,
        client: httpx.AsyncClient,
        who: User | dict[str, str],
        book: Book | int,
        *,
        on: int | None = None,
    ) -> httpx.Response:
        """POST /api/holds/ as `who`: join the book's queue."""
        book_id = book if isinstance(book, int) else book.id
        with _on(on):
            return await client.post("/api/holds/", json={"book": book_id}, headers=self._as(who))

    async def place_hold_ok(
        self,
        client: httpx.AsyncClient,
        who: User | dict[str, str],
        book: Book | int,
        **options: Any,
    ) -> dict[str, Any]:
        """A hold placed through the API (see `place_hold`); its body."""
        response = await self.place_hold(client, who, book, **options)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def cancel_hold(
        self,
        client: httpx.AsyncClient,
        who: User | dict[str, str],
        hold_id: int,
        *,
        on: int | None = None,
    ) -> httpx.Response:
        """POST /api/holds/{id}/cancel/ as `who`."""
        with _on(on):
            return await client.post(f"/api/holds/{hold_id}/cancel/", headers=self._as(who))

    def _as(self, who: User | dict[str, str]) -> dict[str, str]:
        # A user's token is made now, by the clock the request will be made on.
        return who if isinstance(who, dict) else self.auth(who)

    # -- straight in the database ----------------------------------------------------------

    async def borrowing(
        self,
        member: User,
        book: Book,
        *,
        borrowed: date = TODAY,
        due: date | None = None,
        returned: date | None = None,
    ) -> Borrowing:
        """A borrowing as it would stand in the database; due a week after `borrowed`."""
        async with self.db.sessionmaker() as session, session.begin():
            borrowing = Borrowing(
                borrow_date=borrowed,
                expected_return_date=due or borrowed + timedelta(days=7),
                actual_return_date=returned,
                book_id=book.id,
                user_id=member.id,
            )
            session.add(borrowing)
        return borrowing

    async def payment(
        self,
        borrowing: Borrowing,
        *,
        type: str = "PAYMENT",
        status: str = "PENDING",
        amount: str = "3.00",
    ) -> Payment:
        """A payment without a Checkout Session (the sandbox has never heard of it)."""
        async with self.db.sessionmaker() as session, session.begin():
            payment = Payment(
                borrowing_id=borrowing.id,
                type=type,
                status=status,
                money_to_pay=Decimal(amount),
                method="waived" if status == "WAIVED" else None,
            )
            session.add(payment)
        return payment

    async def paid_borrowing(
        self, member: User, book: Book, *, amount: str = "3.00", **dates: Any
    ) -> tuple[Borrowing, Payment]:
        """A borrowing (see `borrowing`) and its fee, PAID."""
        borrowing = await self.borrowing(member, book, **dates)
        return borrowing, await self.payment(borrowing, status="PAID", amount=amount)

    async def overdue_borrowing(
        self, member: User, book: Book, *, days_late: int = 3, borrowed_days_ago: int = 30
    ) -> Borrowing:
        """An active borrowing from `borrowed_days_ago` days before day 0, due `days_late`
        days before it."""
        return await self.borrowing(
            member, book, borrowed=day(-borrowed_days_ago), due=day(-days_late)
        )

    async def hold(
        self,
        member: User,
        book: Book,
        *,
        status: str = "WAITING",
        ready_until: date | None = None,
        borrowing: Borrowing | None = None,
    ) -> Hold:
        """A hold as it would stand in the database (a READY one is kept until day 3 unless
        `ready_until` says otherwise). The book's inventory is left as it is."""
        if status == "READY" and ready_until is None:
            ready_until = day(3)
        async with self.db.sessionmaker() as session, session.begin():
            hold = Hold(
                book_id=book.id,
                user_id=member.id,
                status=status,
                ready_until=ready_until,
                borrowing_id=borrowing.id if borrowing else None,
            )
            session.add(hold)
        return hold

    async def notification(self, text: str = "hello", **fields: Any) -> Notification:
        """A staff message in the outbox, PENDING unless `fields` say otherwise."""
        async with self.db.sessionmaker() as session, session.begin():
            notification = Notification(kind="test", text=text, **fields)
            session.add(notification)
        return notification


# -- Stripe's hosted page, and what the API answers -------------------------------------


async def pay(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, session_url: str
) -> httpx.Response:
    """Press Pay on the sandbox's page and follow its redirect back to the API."""
    redirect = await browser.post(session_url + "/pay")
    assert redirect.status_code == 303, redirect.text
    return await client.get(app_path(redirect.headers["location"]))


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    """POST /api/users/token/."""
    return await client.post("/api/users/token/", json={"email": email, "password": password})


async def assert_can_login(client: httpx.AsyncClient, email: str, password: str) -> str:
    """Log in; the access token."""
    response = await login(client, email, password)
    assert response.status_code == 200, response.text
    token: str = response.json()["access"]
    return token


async def assert_cannot_login(client: httpx.AsyncClient, email: str, password: str) -> None:
    assert_error(await login(client, email, password), 401, "invalid_credentials")


def the_payment(borrowing: dict[str, Any], kind: str = "PAYMENT") -> dict[str, Any]:
    """A borrowing body's one payment of `kind` (PAYMENT: its fee; FINE)."""
    found = [p for p in borrowing["payments"] if p["type"] == kind]
    assert len(found) == 1, borrowing["payments"]
    return found[0]


def app_path(url: str) -> str:
    """Path and query of an absolute URL, for the ASGI `client`."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def query_param(url: str, name: str) -> str:
    """The one value of `name` in a URL's query."""
    values = parse_qs(urlsplit(url).query)[name]
    assert len(values) == 1
    return values[0]


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]


# -- rows read back ---------------------------------------------------------------------------


async def fetch(db: Database, model: type[M], row_id: int) -> M:
    """A row as it stands in the database now."""
    async with db.sessionmaker() as session:
        row = await session.get(model, row_id)
    assert row is not None, (model, row_id)
    return row


async def count(db: Database, model: Any, *where: Any) -> int:
    async with db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


async def inventory(db: Database, book_id: int) -> int:
    return (await fetch(db, Book, book_id)).inventory


async def payments_of(db: Database, borrowing_id: int | None = None) -> list[Payment]:
    """Payments in id order: a borrowing's, or all of them."""
    statement = select(Payment).order_by(Payment.id)
    if borrowing_id is not None:
        statement = statement.where(Payment.borrowing_id == borrowing_id)
    async with db.sessionmaker() as session:
        return list((await session.scalars(statement)).all())


async def paid_notifications(db: Database) -> int:
    return await count(db, Notification, Notification.kind == "payment_paid")


async def notification_texts(db: Database, kind: str | None = None) -> list[str]:
    """The staff messages recorded (of one `kind`), oldest first."""
    statement = select(Notification.text).order_by(Notification.id)
    if kind is not None:
        statement = statement.where(Notification.kind == kind)
    async with db.sessionmaker() as session:
        return list((await session.scalars(statement)).all())


async def audit_entries(db: Database, action: str | None = None) -> list[AuditEntry]:
    """The record of staff actions, oldest first (of one `action`, if given)."""
    statement = select(AuditEntry).order_by(AuditEntry.id)
    if action is not None:
        statement = statement.where(AuditEntry.action == action)
    async with db.sessionmaker() as session:
        return list((await session.scalars(statement)).all())


async def holds_of(db: Database, book_id: int | None = None) -> list[Hold]:
    """Holds in id order (the queue's order): a book's, or all of them."""
    statement = select(Hold).order_by(Hold.id)
    if book_id is not None:
        statement = statement.where(Hold.book_id == book_id)
    async with db.sessionmaker() as session:
        return list((await session.scalars(statement)).all())


async def copies(db: Database, book_id: int) -> dict[str, int]:
    """Where a book's copies are: on the shelf, on loan, put aside for a READY hold. Their
    sum is constant whatever happens, short of staff changing the inventory."""
    async with db.sessionmaker() as session:
        on_loan = select(func.count()).where(
            Borrowing.book_id == book_id, Borrowing.actual_return_date.is_(None)
        )
        ready = select(func.count()).where(Hold.book_id == book_id, Hold.status == "READY")
        row = (
            await session.execute(
                select(Book.inventory, on_loan.scalar_subquery(), ready.scalar_subquery()).where(
                    Book.id == book_id
                )
            )
        ).one()
    return {"shelf": row[0], "on_loan": row[1], "ready": row[2]}


def open_sessions(sandbox: SandboxStripe) -> list[str]:
    """The ids of the sandbox's sessions that can still be paid."""
    return [s["id"] for s in sandbox.sessions.values() if s["status"] == "open"]


async def snapshot(db: Database, sandbox: SandboxStripe) -> dict[str, Any]:
    """Everything a refused borrowing, return, hold or extension must leave as it was."""
    async with db.sessionmaker() as session:
        books = dict((await session.execute(select(Book.id, Book.inventory))).all())
        borrowings = sorted(
            (
                await session.execute(
                    select(
                        Borrowing.id,
                        Borrowing.expected_return_date,
                        Borrowing.actual_return_date,
                        Borrowing.extensions,
                    )
                )
            ).all()
        )
        holds = sorted(
            (
                await session.execute(
                    select(Hold.id, Hold.status, Hold.ready_until, Hold.borrowing_id)
                )
            ).all()
        )
        payments = sorted(
            (
                await session.execute(
                    select(Payment.id, Payment.type, Payment.status, Payment.money_to_pay)
                )
            ).all()
        )
    return {
        "books": books,
        "borrowings": [tuple(row) for row in borrowings],
        "payments": [tuple(row) for row in payments],
        "holds": [tuple(row) for row in holds],
        "notifications": await count(db, Notification),
        "open_stripe_sessions": len(open_sessions(sandbox)),
    }


async def assert_refused(
    db: Database,
    sandbox: SandboxStripe,
    request: Awaitable[httpx.Response],
    status: int,
    code: str,
) -> dict[str, Any]:
    """`request` (not yet awaited) is refused with `status` and `code`, and leaves rows,
    inventory and payable Stripe sessions as they were; the state it left."""
    before = await snapshot(db, sandbox)
    assert_error(await request, status, code)
    after = await snapshot(db, sandbox)
    assert after == before
    return after


# -- Stripe -----------------------------------------------------------------------------------

CHECKOUT_PATH = "/v1/checkout/sessions"


def checkout_requests(sandbox: SandboxStripe) -> list[dict[str, Any]]:
    """The parameters of every Checkout Session the SDK asked the sandbox for, in order."""
    return [
        params
        for method, path, params in sandbox.requests
        if (method, path) == ("POST", CHECKOUT_PATH)
    ]


def stripe_500(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        500, json={"error": {"type": "api_error", "message": "Something went wrong."}}
    )


class StripeDown:
    """Make the Stripe API fail until the block ends (the hosted pages keep working)."""

    def __init__(self, router: respx.MockRouter, effect: Any = httpx.ConnectTimeout) -> None:
        self.route = router.routes["stripe"]
        self.effect = effect

    def __enter__(self) -> None:
        self.original = self.route.side_effect
        self.route.side_effect = self.effect

    def __exit__(self, *exc: object) -> None:
        self.route.side_effect = self.original


async def post_event(client: httpx.AsyncClient, payload: bytes, header: str | None) -> Any:
    """Deliver a Stripe event to the webhook, signed with `header` (None: unsigned)."""
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Stripe-Signature"] = header
    return await client.post("/api/payments/webhook/", content=payload, headers=headers)


def task_ctx(app: Any, db: Database, settings: Settings) -> dict[str, Any]:
    """What the worker hands a job (its services built from `settings`, as at its start)."""
    services = Services(settings, db, app.state.queue, app.state.stripe)
    return {
        "db": db,
        "stripe": app.state.stripe,
        "settings": settings,
        "redis": app.state.queue,
        "services": services,
    }


async def member_notices(db: Database, kind: str | None = None) -> list[MemberNotice]:
    """The member notices recorded (of one `kind`), oldest first."""
    statement = select(MemberNotice).order_by(MemberNotice.id)
    if kind is not None:
        statement = statement.where(MemberNotice.kind == kind)
    async with db.sessionmaker() as session:
        return list((await session.scalars(statement)).all())


async def deliver_notices(app: Any, db: Database, settings: Settings) -> dict[int, str]:
    """The worker's delivery job for every PENDING member notice: each one's outcome (a
    temporary refusal: "retry")."""
    from arq import Retry

    mailer = Mailer(settings)
    ctx = {**task_ctx(app, db, settings), "mailer": mailer}
    outcomes: dict[int, str] = {}
    try:
        for notice in await member_notices(db):
            if notice.status != "PENDING":
                continue
            try:
                outcomes[notice.id] = await deliver_member_notice(ctx, notice.id)
            except Retry:
                outcomes[notice.id] = "retry"
    finally:
        await mailer.close()
    return outcomes


async def expire_holds(app: Any, db: Database, settings: Settings, *, on: int | None = None) -> int:
    """The worker's hold expiry job (with `on`, run on that day after day 0): how many
    holds it expired."""
    with _on(on):
        return await expire_uncollected_holds(task_ctx(app, db, settings))


# -- round trips to PostgreSQL ----------------------------------------------------------------


@contextlib.contextmanager
def round_trips() -> Iterator[list[str]]:
    """What asyncpg sends while the block runs, one label per round trip: simple queries
    (BEGIN, COMMIT, ROLLBACK) and executions of prepared statements."""
    log: list[str] = []
    execute = asyncpg.connection.Connection.execute
    fetch = asyncpg.prepared_stmt.PreparedStatement.fetch

    async def logged_execute(self, query, *args, **kwargs):  # type: ignore[no-untyped-def]
        log.append(query.split()[0].rstrip(";"))
        return await execute(self, query, *args, **kwargs)

    async def logged_fetch(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        log.append(_label(self.get_query()))
        return await fetch(self, *args, **kwargs)

    asyncpg.connection.Connection.execute = logged_execute  # type: ignore[method-assign]
    asyncpg.prepared_stmt.PreparedStatement.fetch = logged_fetch  # type: ignore[method-assign]
    try:
        yield log
    finally:
        asyncpg.connection.Connection.execute = execute  # type: ignore[method-assign]
        asyncpg.prepared_stmt.PreparedStatement.fetch = fetch  # type: ignore[method-assign]


def _label(sql: str) -> str:
    """`INSERT payments`, `UPDATE books`, `SELECT users FOR UPDATE`, `EXPLAIN` …; a
    statement of several writes (WITH) names each: `INSERT stripe_events + UPDATE payments`."""
    verb = sql.split()[0].upper()
    if verb == "EXPLAIN":
        return verb
    if verb == "WITH":
        writes = re.findall(r"\b(INSERT INTO|UPDATE|DELETE FROM) (\w+)", sql)
        assert writes, sql
        return " + ".join(f"{what.split()[0]} {table}" for what, table in writes)
    if verb == "SELECT":
        return f"SELECT {_outer_table(sql)}" + (" FOR UPDATE" if "FOR UPDATE" in sql else "")
    table = re.search(r"^(?:INSERT INTO|UPDATE|DELETE FROM) (\w+)", sql)
    assert table, sql
    return f"{verb} {table.group(1)}"


def _outer_table(select: str) -> str:
    """The table the outer SELECT reads (not a subquery's), the function it calls, or
    `subqueries` when it reads nothing but its subqueries' answers."""
    depth = 0
    for token in re.finditer(r"\(|\)|\bFROM (\w+)", select):
        if token.group() == "(":
            depth += 1
        elif token.group() == ")":
            depth -= 1
        elif depth == 0:
            return token.group(1)
    if select.startswith("SELECT (SELECT"):
        return "subqueries"
    function = re.match(r"SELECT (\w+)\(", select)
    assert function, select
    return function.group(1)


async def waiting_for_locks(db: Database, count: int) -> None:
    """Until `count` connections wait for a row lock. Each look is a transaction of its own:
    within one, PostgreSQL answers pg_stat_activity from the snapshot it took first."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(500):
        async with db.sessionmaker() as s:
            if (await s.scalar(query) or 0) >= count:
                return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} connection(s) never waited for a lock")
