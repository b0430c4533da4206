"""`make bench-large`: every list, search, write and sweep on a small and a large library.

    .venv/bin/python bench/large.py                  # both libraries (~10 minutes)
    .venv/bin/python bench/large.py --seconds 2      # shorter cells
    .venv/bin/python bench/large.py --reseed         # seed the large library again

PostgreSQL from BENCH_POSTGRES_URL (default: the server on 127.0.0.1:5432, user postgres),
in two databases of its own, library_bench_small (made afresh each run) and
library_bench_large (kept between runs: seeding it takes a few minutes; `--reseed` makes it
again). Redis from BENCH_REDIS_URL (default 127.0.0.1:6379, database 7, flushed first).
Each library is served in turn by the production-style stack of `make bench` (two API
workers, the sandbox Stripe). Every request gets p50 / p99 at one request at a time and
requests per second at 16 concurrent; the sweeps' statements are timed in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import library_data
import loadgen
import seed
import stack
import uvloop

ADMIN_CSRF = re.compile(r'name="csrftoken" value="([^"]+)"')
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/7"
OUTPUT = stack.RESULTS / "large.md"
WRITERS = range(2, 42)  # members with no borrowings of their own (library_data)


@dataclass(frozen=True, slots=True)
class Probe:
    name: str
    kind: str  # api, admin, write
    path: str
    who: str = "anyone"  # anyone, member, staff, admin


@dataclass(slots=True)
class Figures:
    p50: float = 0.0
    p99: float = 0.0
    rps: float = 0.0
    errors: int = 0
    rows: int = 0  # a sweep's: the rows its statements handled (bounded by its batch)


@dataclass(slots=True)
class Library:
    size: library_data.LibrarySize
    seeded_seconds: float | None = None
    figures: dict[str, Figures] = field(default_factory=dict)


def probes(facts: dict[str, Any]) -> list[Probe]:
    isbn = facts["isbn"]
    dashed = f"{isbn[:3]}-{isbn[3]}-{isbn[4:9]}-{isbn[9:12]}-{isbn[12]}"
    return [
        Probe("catalogue, first page", "api", "/api/books/"),
        Probe("catalogue ?search= a title word", "api", "/api/books/?search=river"),
        Probe("catalogue ?search= an author", "api", "/api/books/?search=kowalski"),
        Probe("catalogue ?search= an ISBN", "api", f"/api/books/?search={dashed}"),
        Probe("catalogue ?search= part of an ISBN", "api", f"/api/books/?search={isbn[4:10]}"),
        Probe("catalogue ?ordering=-daily_fee&available=true", "api",
              "/api/books/?ordering=-daily_fee&available=true"),
        Probe("catalogue ?withdrawn=true", "api", "/api/books/?withdrawn=true"),
        Probe("catalogue, page 50 (?offset=980)", "api", "/api/books/?offset=980"),
        Probe("a member's borrowings", "api", "/api/borrowings/", "member"),
        Probe("a member's payments", "api", "/api/payments/", "member"),
        Probe("a member's holds", "api", "/api/holds/", "member"),
        Probe("staff borrowings", "api", "/api/borrowings/", "staff"),
        Probe("staff borrowings ?is_active=true", "api", "/api/borrowings/?is_active=true",
              "staff"),
        Probe("staff borrowings ?user_id=", "api", f"/api/borrowings/?user_id={facts['member']}",
              "staff"),
        Probe("staff members", "api", "/api/users/", "staff"),
        Probe("staff members ?search= a surname", "api", "/api/users/?search=kowalski", "staff"),
        Probe("staff holds", "api", "/api/holds/", "staff"),
        Probe("staff holds ?book_id=", "api", f"/api/holds/?book_id={facts['held_book']}",
              "staff"),
        Probe("staff holds ?status=WAITING", "api", "/api/holds/?status=WAITING", "staff"),
        Probe("staff payments", "api", "/api/payments/", "staff"),
        Probe("staff payments ?status=PENDING", "api", "/api/payments/?status=PENDING", "staff"),
        Probe("staff payments ?type=FINE", "api", "/api/payments/?type=FINE", "staff"),
        Probe("admin books", "admin", "/admin/books/list", "admin"),
        Probe("admin books, searched", "admin", "/admin/books/list?q=river", "admin"),
        Probe("admin members", "admin", "/admin/members/list", "admin"),
        Probe("admin members, searched", "admin", "/admin/members/list?q=kowalski", "admin"),
        Probe("admin borrowings", "admin", "/admin/borrowings/list", "admin"),
        Probe("admin borrowings, overdue", "admin",
              "/admin/borrowings/list?filter=state__eq%3DOVERDUE", "admin"),
        Probe("admin holds", "admin", "/admin/holds/list", "admin"),
        Probe("admin payments", "admin", "/admin/payments/list", "admin"),
        Probe("admin staff messages", "admin", "/admin/messages/list", "admin"),
        Probe("borrow + return (two writes)", "write", "", "writer"),
    ]  # fmt: skip


# -- the client side --------------------------------------------------------------------


class Client:
    def __init__(self, port: int, tokens: dict[str, str], admin_cookie: str, books: list[int]):
        self.port = port
        self.tokens = tokens
        self.admin_cookie = admin_cookie
        self.books = books  # for the writers: one book per virtual user

    def raw(self, probe: Probe) -> bytes:
        headers: list[tuple[str, str]] = []
        if probe.who in {"member", "staff"}:
            headers.append(("Authorization", f"Bearer {self.tokens[probe.who]}"))
        if probe.who == "admin":
            headers.append(("Cookie", self.admin_cookie))
        return loadgen.encode_request("GET", probe.path, port=self.port, headers=headers)

    async def cycle(self, connection: loadgen.HttpConnection, user: int) -> int:
        """Borrow a book and return it: two writes; the status of a failed one (0: none)."""
        token = self.tokens[f"writer{user}"]
        due = (datetime.now(UTC).date() + timedelta(days=7)).isoformat()
        headers = [("Authorization", f"Bearer {token}")]
        body = {"book": self.books[user % len(self.books)], "expected_return_date": due}
        made = await connection.request(
            loadgen.encode_request(
                "POST", "/api/borrowings/", port=self.port, headers=headers, json_body=body
            )
        )
        if made.status != 201:
            return made.status
        borrowing = json.loads(made.body)["id"]
        path = f"/api/borrowings/{borrowing}/return/"
        returned = await connection.request(
            loadgen.encode_request("POST", path, port=self.port, headers=headers)
        )
        return 0 if returned.status == 200 else returned.status

    async def measure(self, probe: Probe, concurrency: int, seconds: float) -> Figures:
        latencies: list[float] = []
        errors = 0
        deadline = 0.0

        async def user(index: int) -> None:
            nonlocal errors
            connection = loadgen.HttpConnection(self.port)
            raw = self.raw(probe) if probe.kind != "write" else b""
            try:
                while time.monotonic() < deadline:
                    started = time.perf_counter()
                    if probe.kind == "write":
                        failed = await self.cycle(connection, index)
                        errors += failed != 0
                    else:
                        response = await connection.request(raw)
                        errors += response.status != 200
                    latencies.append(time.perf_counter() - started)
            finally:
                connection.close()

        deadline = time.monotonic() + min(1.0, seconds / 3)  # warm-up, not counted
        await asyncio.gather(*(user(i) for i in range(concurrency)))
        latencies.clear()
        errors = 0
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(*(user(i) for i in range(concurrency)))
        elapsed = time.monotonic() - started
        ordered = sorted(latencies)
        return Figures(
            p50=1000 * loadgen.percentile(ordered, 0.50),
            p99=1000 * loadgen.percentile(ordered, 0.99),
            rps=len(ordered) / elapsed,
            errors=errors,
        )


# -- the sweeps --------------------------------------------------------------------------


async def time_sweeps(url: str, repeat: int) -> dict[str, Figures]:
    """Each sweep's statements (what grows with the tables), `repeat` times; the writes
    of relay and purge rolled back, so every run finds the same work."""
    from library_service.borrowings import reminders, report
    from library_service.core import clock
    from library_service.core.config import Settings
    from library_service.core.db import Database
    from library_service.holds.repository import HoldRepository
    from library_service.holds.tasks import EXPIRY_BATCH
    from library_service.notifications.repository import NotificationRepository
    from library_service.notifications.tasks import RELAY_BATCH
    from library_service.payments.repository import PaymentRepository
    from library_service.payments.tasks import POLL_BATCH
    from library_service.web.idempotency import expired_keys_batch

    settings = Settings(_env_file=None, DATABASE_URL=url)  # type: ignore[call-arg]
    db = Database.connect(url, settings)
    today = date.today()

    async def overdue_report() -> int:
        async with db.sessionmaker() as session:
            # Two chunks of the report's reads (it reads REPORT_CHUNK loans at a time).
            first = await report.borrowings_due_by(session, today + timedelta(days=1))
            rows = len(first)
            if first:
                last = first[-1]
                rows += len(
                    await report.borrowings_due_by(
                        session,
                        today + timedelta(days=1),
                        after=(last.expected_return_date, last.id),
                    )
                )
            return rows + len(await report.holds_put_aside(session, from_day=today))

    async def member_reminders() -> int:
        async with db.autocommit_sessionmaker() as session:
            # Two batches of the sweep's reads (it reads BATCH loans at a time).
            first = await reminders.loans_to_remind(
                session, today=today, settings=settings, after=0, batch=reminders.BATCH
            )
            rows = len(first)
            if first:
                rows += len(
                    await reminders.loans_to_remind(
                        session,
                        today=today,
                        settings=settings,
                        after=first[-1].id,
                        batch=reminders.BATCH,
                    )
                )
            return rows

    async def expiry_poll() -> int:
        async with db.autocommit_sessionmaker() as session:
            payments = PaymentRepository(session)
            opened = await payments.open_sessions(limit=POLL_BATCH)
            return len(opened) + len(await payments.pending_without_session(limit=POLL_BATCH))

    async def hold_expiry() -> int:
        async with db.autocommit_sessionmaker() as session:
            return len(await HoldRepository(session).uncollected(today=today, limit=EXPIRY_BATCH))

    async def relay() -> int:
        async with db.sessionmaker() as session, session.begin():
            due = await NotificationRepository(session).due_for_relay(limit=RELAY_BATCH)
            await session.rollback()
            return len(due)

    async def purge() -> int:
        async with db.sessionmaker() as session, session.begin():
            result = await session.execute(expired_keys_batch(clock.now()))  # a batch of the run
            await session.rollback()
            return int(result.rowcount)  # type: ignore[attr-defined]

    sweeps: dict[str, Callable[[], Awaitable[int]]] = {
        "sweep: overdue report (reads)": overdue_report,
        "sweep: member reminders (reads)": member_reminders,
        "sweep: expiry poll (work list)": expiry_poll,
        "sweep: hold expiry (work list)": hold_expiry,
        "sweep: relay (work list)": relay,
        "sweep: idempotency purge (rolled back)": purge,
    }
    results = {}
    try:
        for name, sweep in sweeps.items():
            await sweep()  # warm
            times = []
            rows = 0
            for _ in range(repeat):
                started = time.perf_counter()
                rows = await sweep()
                times.append(time.perf_counter() - started)
            ordered = sorted(times)
            results[name] = Figures(
                p50=1000 * loadgen.percentile(ordered, 0.5),
                p99=1000 * loadgen.percentile(ordered, 0.99),
                rows=rows,
            )
    finally:
        await db.dispose()
    return results


# -- a library, served --------------------------------------------------------------------


async def prepare(url: str, size: library_data.LibrarySize, reseed: bool, say: Any) -> float | None:
    """Seed the database unless it already holds this library; the seconds seeding took."""
    from library_service.dev.embedded import create_database

    if not reseed:
        try:
            connection = await seed.connect(url)
            try:
                books = await connection.fetchval("SELECT count(*) FROM books")
            finally:
                await connection.close()
            if books == size.books:
                say(f"{size.name}: reusing the seeded database, migrated to the head")
                await asyncio.to_thread(stack.migrate, url)
                return None
        except Exception as exc:  # no such database yet: make it
            say(f"{size.name}: no seeded database yet ({type(exc).__name__})")
    admin = url.rsplit("/", 1)[0] + "/postgres"
    started = time.monotonic()
    await create_database(admin, url.rsplit("/", 1)[1], drop_existing=True)
    await asyncio.to_thread(stack.migrate, url)
    await library_data.fill(url, size, say)
    return time.monotonic() - started


async def facts_of(url: str) -> dict[str, Any]:
    connection = await seed.connect(url)
    try:
        return {
            "isbn": await connection.fetchval("SELECT isbn FROM books WHERE id = 1234 % "
                                              "(SELECT max(id) FROM books) + 1"),
            "member": await connection.fetchval(
                "SELECT user_id FROM borrowings ORDER BY id DESC LIMIT 1"
            ),
            "held_book": await connection.fetchval(
                "SELECT book_id FROM holds WHERE status = 'WAITING' ORDER BY id LIMIT 1"
            ),
            "books": [
                row["id"]
                for row in await connection.fetch(
                    "SELECT id FROM books WHERE inventory >= 3 AND NOT withdrawn "
                    "AND id NOT IN (SELECT book_id FROM holds WHERE status IN "
                    "('WAITING', 'READY')) ORDER BY id LIMIT 40"
                )
            ],
        }  # fmt: skip
    finally:
        await connection.close()


def tokens_for(secret: str, facts: dict[str, Any]) -> dict[str, str]:
    """Access tokens signed with the stack's SECRET_KEY, instead of 40 bcrypt logins."""
    from library_service.core.config import Settings
    from library_service.users.security import create_token

    settings = Settings.model_construct(SECRET_KEY=secret, ACCESS_MINUTES=600, REFRESH_DAYS=1)
    tokens = {
        "staff": create_token(library_data.STAFF_ID, "access", settings),
        "member": create_token(facts["member"], "access", settings),
    }
    for index, member in enumerate(WRITERS):
        tokens[f"writer{index}"] = create_token(member, "access", settings)
    return tokens


def admin_cookie(port: int) -> str:
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as http:
        form = http.get("/admin/login")
        match = ADMIN_CSRF.search(form.text)
        assert match is not None, "no CSRF token on the admin's sign-in page"
        email = library_data.staff_email()
        signed = http.post(
            "/admin/login",
            data={"username": email, "password": seed.PASSWORD, "csrftoken": match.group(1)},
        )
        assert signed.status_code in {302, 303}, signed.text[:500]
        return "; ".join(f"{name}={value}" for name, value in http.cookies.items())


def serve_and_measure(
    library: Library, url: str, redis_url: str, args: argparse.Namespace, say: Any
) -> None:
    facts = asyncio.run(facts_of(url))
    with ExitStack() as services:
        api_port, sandbox_port = stack.free_port(), stack.free_port()
        environment = stack.service_environment(
            database_url=url, redis_url=redis_url, api_port=api_port, sandbox_port=sandbox_port
        )
        environment["LOGIN_RATE_LIMIT"] = "1000000"
        environment["LOGIN_RATE_LIMIT_PER_ADDRESS"] = "1000000"
        sandbox = stack.start_sandbox(services, sandbox_port, api_port, environment)
        api = stack.start_service(
            services,
            "api",
            [
                str(stack.BIN / "library-service"),
                "run",
                "--host=127.0.0.1",
                f"--port={api_port}",
                f"--workers={stack.API_WORKERS}",
                "--no-worker",
            ],
            environment,
        )
        stack.wait_http(sandbox, f"http://127.0.0.1:{sandbox_port}/", any_status=True)
        stack.wait_http(api, f"http://127.0.0.1:{api_port}/ready")
        client = Client(
            api_port,
            tokens_for(environment["SECRET_KEY"], facts),
            admin_cookie(api_port),
            facts["books"],
        )
        for probe in probes(facts):
            if args.only and not any(word in probe.name for word in args.only):
                continue
            one = asyncio.run(client.measure(probe, 1, args.seconds))
            many = asyncio.run(client.measure(probe, 16, args.seconds))
            one.rps, one.errors = many.rps, one.errors + many.errors
            library.figures[probe.name] = one
            say(
                f"{library.size.name:<5} {probe.name:<48} p50 {one.p50:7.1f}  p99 {one.p99:7.1f}"
                f"  c=16 {many.rps:6.0f}/s  errors {one.errors}"
            )
    library.figures.update(asyncio.run(time_sweeps(url, args.repeat)))


def render(small: Library, large: Library, header: list[str]) -> str:
    lines = [
        "# Small and large library",
        "",
        *header,
        "",
        "| request | small p50 / p99 ms | large p50 / p99 ms | large ÷ small (p50) "
        "| c=16 req/s (a sweep: rows handled) small → large | within target |",
        "|---|---|---|---|---|---|",
    ]
    for name, one in small.figures.items():
        other = large.figures.get(name)
        if other is None:
            continue
        ratio = other.p50 / one.p50 if one.p50 else 0.0
        if name.startswith("sweep"):
            # Bounded by its batch, not by the table: its time per row handled stays within
            # 2x (the small library rarely fills a batch, so its fixed costs weigh more).
            rps = f"{one.rows:,} → {other.rows:,} rows"
            per_row = (other.p50 / max(other.rows, 1)) / (one.p50 / max(one.rows, 1))
            met = per_row <= 2
        else:
            rps = f"{one.rps:,.0f} → {other.rps:,.0f}"
            met = ratio <= 2 and other.rps >= one.rps / 2
        if name.startswith("admin"):
            met = met or other.p50 < 150
        errors = f" ({one.errors}/{other.errors} errors)" if one.errors or other.errors else ""
        lines.append(
            f"| {name} | {one.p50:.1f} / {one.p99:.1f} | {other.p50:.1f} / {other.p99:.1f} "
            f"| {ratio:.1f}x | {rps} | {'yes' if met else '**no**'}{errors} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="each cell's window")
    parser.add_argument("--repeat", type=int, default=20, help="runs of each sweep")
    parser.add_argument("--reseed", action="store_true", help="seed the large library again")
    parser.add_argument("--only", nargs="*", help="probes whose name contains a word")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    say = loadgen_progress()
    postgres = os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS)
    base = postgres.rsplit("/", 1)[0]
    libraries = [Library(library_data.SMALL), Library(library_data.LARGE)]
    load_at_start = os.getloadavg()[0]
    for library in libraries:
        url = f"{base}/library_bench_{library.size.name}"
        reseed = args.reseed or library.size is library_data.SMALL
        library.seeded_seconds = asyncio.run(prepare(url, library.size, reseed, say))
        if library.seeded_seconds is not None:
            say(f"{library.size.name}: seeded in {library.seeded_seconds:.0f} s")
        asyncio.run(_flush(redis_url))
        serve_and_measure(library, url, redis_url, args, say)
    small, large = libraries
    seeding = (
        f"{large.seeded_seconds:.0f} s (created, migrated, filled, VACUUM ANALYZE)"
        if large.seeded_seconds is not None
        else "reused from an earlier run"
    )
    header = [
        f"- when: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} cores; 1-min load "
        f"{load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end",
        "- stack: `library-service run --workers 2 --no-worker`, production settings, "
        "PostgreSQL 15 and Redis on loopback",
        f"- small: {_describe(small.size)}",
        f"- large: {_describe(large.size)}; seeding: {seeding}",
        f"- p50 / p99 at 1 request at a time, {args.seconds:g} s per cell; req/s at 16 "
        f"concurrent; sweeps: their statements, {args.repeat} runs",
    ]
    markdown = render(small, large, header)
    print()
    print(markdown)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(markdown)
    return 0


def _describe(size: library_data.LibrarySize) -> str:
    return (
        f"{size.books:,} books, {size.members:,} members, {size.borrowings:,} borrowings "
        f"({size.active:,} active), {size.holds:,} holds, {size.messages:,} staff messages"
    )


async def _flush(redis_url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


def loadgen_progress() -> Callable[[str], None]:
    started = time.monotonic()

    def say(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", flush=True)

    return say


if __name__ == "__main__":
    uvloop.install()
    sys.exit(main())
