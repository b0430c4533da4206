"""Issue 21: three API processes behind a balancer and two workers on one PostgreSQL and
one Redis behave as one library; a process can stop, or be killed, without losing anything."""

from __future__ import annotations

import asyncio
import re
import signal
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from library_service.core.config import Settings
from library_service.core.db import Database
from library_service.holds import jobs as hold_jobs
from library_service.models import MemberNotice, Notification, OverdueReport
from library_service.notifications import jobs as notification_jobs
from library_service.notifications import notices as notice_kinds
from library_service.payments import jobs as payment_jobs
from library_service.web.idempotency import PURGE_EXPIRED
from tests.factories import PASSWORD
from tests.scaleout.conftest import MAIL_DOMAIN, METRICS_TOKEN, Stack

pytestmark = [pytest.mark.scaleout, pytest.mark.slow]

CRONS = (
    notification_jobs.RELAY,
    notification_jobs.OVERDUE_REPORT,
    payment_jobs.POLL_EXPIRED_SESSIONS,
    payment_jobs.ATTACH_MISSING_SESSIONS,
    hold_jobs.EXPIRE_UNCOLLECTED,
    notification_jobs.SEND_REMINDERS,
    PURGE_EXPIRED,
)
SLOT = re.compile(r"cron slot ([\w.]+):(\d+) (started|finished)")
TODAY = datetime.now(UTC).date()  # the processes' library time zone is UTC
DUE = (TODAY + timedelta(days=7)).isoformat()


async def _rows(database_url: str, statement: Any) -> list[Any]:
    db = Database.connect(database_url, Settings(_env_file=None, DATABASE_URL=database_url))  # type: ignore[call-arg]
    try:
        async with db.autocommit_sessionmaker() as session:
            return list(await session.execute(statement))
    finally:
        await db.dispose()


async def notifications(database_url: str) -> dict[int, tuple[str, str]]:
    statement = select(Notification.id, Notification.text, Notification.status)
    return {row.id: (row.text, row.status) for row in await _rows(database_url, statement)}


async def member_notices(database_url: str) -> dict[int, tuple[int, str, str]]:
    """Each notice's member, kind and status."""
    statement = select(
        MemberNotice.id, MemberNotice.user_id, MemberNotice.kind, MemberNotice.status
    )
    return {
        row.id: (row.user_id, row.kind, row.status) for row in await _rows(database_url, statement)
    }


# How long a check may take to come true. It only bounds a failing run (a passing one goes
# on as soon as the check holds): on a busy 2-core machine, a killed worker's messages took
# over 30 s to be sent again (arq waits for the dead worker's jobs to time out).
PATIENCE = 90.0


async def eventually(check: Any, *, within: float = PATIENCE, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        await asyncio.sleep(0.1)


async def mismatch(stack: Stack, delivered: Counter[str]) -> str:
    """Why a delivery check failed: each message not received exactly once, with its row and
    what the workers logged of its job."""
    statement = select(
        Notification.id,
        Notification.text,
        Notification.status,
        Notification.attempts,
        Notification.sent_at,
        Notification.last_error,
    )
    lines = []
    for row in await _rows(stack.database_url, statement):
        if delivered[row.text] == 1:
            continue
        lines.append(
            f"#{row.id} received {delivered[row.text]}x, {row.status}, "
            f"{row.attempts} attempt(s), sent_at {row.sent_at}, error {row.last_error!r}: "
            f"{row.text[:50]!r}"
        )
        job = f"notification:{row.id}:"
        for name in stack.workers:
            lines += [
                f"  {name}: {line}" for line in stack.worker_log(name).splitlines() if job in line
            ]
    return "\n".join(lines)


async def all_sent(stack: Stack) -> bool:
    rows = await notifications(stack.database_url)
    return bool(rows) and all(status == "SENT" for _, status in rows.values())


class Load:
    """Members borrowing, paying, returning and holding through the balancer; every answer
    that is not the expected one is a failure (a bounded number of cycles)."""

    def __init__(self, stack: Stack, tokens: list[str], books: list[int]) -> None:
        self.stack = stack
        self.tokens = tokens
        self.books = books
        self.requests = 0
        self.failures: list[str] = []
        self.borrowed = 0  # 201 answers to POST /api/borrowings/

    async def call(
        self, http: httpx.AsyncClient, method: str, url: str, expect: int, **options: Any
    ) -> httpx.Response | None:
        self.requests += 1
        try:
            response = await http.request(method, url, **options)
        except httpx.HTTPError as exc:
            self.failures.append(f"{method} {url}: {exc!r}")
            return None
        if response.status_code != expect:
            self.failures.append(f"{method} {url}: {response.status_code} {response.text[:200]}")
            return None
        return response

    async def cycle(self, http: httpx.AsyncClient, token: str, book: int) -> None:
        """Borrow, pay in the sandbox (its redirect comes back through the balancer), return."""
        auth = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
        body = {"book": book, "expected_return_date": DUE}
        borrowed = await self.call(http, "POST", "/api/borrowings/", 201, json=body, headers=auth)
        if borrowed is None:
            return
        self.borrowed += 1
        session_url = borrowed.json()["payments"][0]["session_url"]
        paid = await self.call(http, "POST", f"{session_url}/pay", 303)
        if paid is not None:
            await self.call(http, "GET", paid.headers["location"], 200)
        borrowing = borrowed.json()["id"]
        await self.call(
            http,
            "POST",
            f"/api/borrowings/{borrowing}/return/",
            200,
            headers=auth | {"Idempotency-Key": str(uuid.uuid4())},
        )

    async def member(self, index: int, cycles: int, pause: float) -> None:
        async with httpx.AsyncClient(base_url=self.stack.url, timeout=15) as http:
            for _ in range(cycles):
                await self.cycle(http, self.tokens[index], self.books[index])
                await asyncio.sleep(pause)

    async def run(self, cycles: int, pause: float = 0.0) -> None:
        await asyncio.gather(*(self.member(i, cycles, pause) for i in range(len(self.tokens))))


async def login(stack: Stack, email: str) -> str:
    async with httpx.AsyncClient(base_url=stack.url, timeout=15) as http:
        response = await http.post("/api/users/token/", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        token: str = response.json()["access"]
        return token


async def prepare(stack: Stack, factory: Any, members: int) -> tuple[list[str], list[int]]:
    users = [await factory.member() for _ in range(members)]
    books = await factory.books([{"title": f"Scale {i}", "inventory": 3} for i in range(members)])
    tokens = [await login(stack, user.email) for user in users]
    return tokens, [book.id for book in books]


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def cron_slots(stack: Stack) -> dict[str, list[tuple[str, int]]]:
    """Per worker, the cron slots it finished: (job name, slot in ms)."""
    slots: dict[str, list[tuple[str, int]]] = {}
    for name in stack.workers:
        found = SLOT.findall(stack.worker_log(name))
        slots[name] = [(job, int(ms)) for job, ms, state in found if state == "finished"]
    return slots


async def test_many_processes_behave_as_one_library(stack: Stack, factory):
    started = time.time()
    baseline = len(stack.telegram.sends)  # the suite emptied the tables: from now on
    stack.mailbox.clear()
    tokens, books = await prepare(stack, factory, members=6)
    # Loans the daily reminder sweep finds (it runs in every slot, on either worker): one
    # due in DUE_REMINDER_DAYS (2), one a day late.
    reader = await factory.member()
    soon_book, late_book = await factory.books([{"title": "Soon"}, {"title": "Late"}])
    await factory.borrowing(reader, soon_book, borrowed=TODAY, due=TODAY + timedelta(days=2))
    await factory.borrowing(
        reader, late_book, borrowed=TODAY - timedelta(days=15), due=TODAY - timedelta(days=1)
    )
    load = Load(stack, tokens, books)

    # A hold queue across processes: a book with one copy, borrowed, held, returned.
    [held_book] = await factory.books([{"title": "Only copy", "inventory": 1}])
    async with httpx.AsyncClient(base_url=stack.url, timeout=15) as http:
        first = {"Authorization": f"Bearer {tokens[0]}"}
        second = {"Authorization": f"Bearer {tokens[1]}"}
        loan = await http.post(
            "/api/borrowings/",
            json={"book": held_book.id, "expected_return_date": DUE},
            headers=first,
        )
        assert loan.status_code == 201, loan.text
        hold = await http.post("/api/holds/", json={"book": held_book.id}, headers=second)
        assert hold.status_code == 201, hold.text
        returned = await http.post(f"/api/borrowings/{loan.json()['id']}/return/", headers=first)
        assert returned.status_code == 200
        ready = await http.get(f"/api/holds/{hold.json()['id']}/", headers=second)
        assert ready.json()["status"] == "READY"

    await load.run(cycles=3)
    assert load.failures == []
    assert set(stack.balancer.routed) == set(stack.apis)  # every process served some

    # An Idempotency-Key retry that lands on another process answers the first answer.
    first_port, second_port, _ = stack.apis
    key = {"Authorization": f"Bearer {tokens[2]}", "Idempotency-Key": str(uuid.uuid4())}
    body = {"book": books[2], "expected_return_date": DUE}
    async with httpx.AsyncClient(timeout=15) as http:
        original = await http.post(
            f"http://127.0.0.1:{first_port}/api/borrowings/", json=body, headers=key
        )
        retry = await http.post(
            f"http://127.0.0.1:{second_port}/api/borrowings/", json=body, headers=key
        )
    assert original.status_code == retry.status_code == 201
    assert retry.json() == original.json()
    assert retry.headers["idempotent-replayed"] == "true"

    # The login limit (3 failed tries) holds across processes: one address, one email.
    victim = "someone@example.com"
    statuses = []
    async with httpx.AsyncClient(timeout=15) as http:
        for attempt in range(6):
            port = list(stack.apis)[attempt % 3]
            response = await http.post(
                f"http://127.0.0.1:{port}/api/users/token/",
                json={"email": victim, "password": "wrong-password"},
                headers={"X-Forwarded-For": "203.0.113.9"},
            )
            statuses.append(response.status_code)
    assert statuses == [401, 401, 401, 429, 429, 429]

    # The daily report runs in every cron slot (2 s here) until one worker has written it;
    # under the load above its job may still wait in the queue behind the messages.
    async def report_written() -> bool:
        return bool(await _rows(stack.database_url, select(OverdueReport.report_date)))

    await eventually(report_written, what="today's overdue report written")
    # Every staff message reaches the chat exactly once.
    await eventually(lambda: all_sent(stack), what="every message SENT")
    recorded = await notifications(stack.database_url)
    delivered = Counter(stack.telegram.delivered()[baseline:])
    expected = Counter(text for text, _ in recorded.values())
    assert delivered == expected, await mismatch(stack, delivered)
    # The daily report, written once however many workers ran its slots: one day on record,
    # and none of its messages twice (it ran before or after the late loan was made).
    reports = await _rows(stack.database_url, select(OverdueReport.report_date))
    assert [row.report_date for row in reports] == [TODAY]
    report_messages = select(Notification.text).where(Notification.kind.in_(["overdue", "holds"]))
    report_texts = Counter(row.text for row in await _rows(stack.database_url, report_messages))
    assert report_texts and max(report_texts.values()) == 1, report_texts

    # Every member notice is e-mailed exactly once, whichever worker sends it, and the
    # sweep that runs in every slot wrote one reminder per loan and kind.
    async def notices_settled() -> bool:
        notices = await member_notices(stack.database_url)
        reminders = [kind for user, kind, _ in notices.values() if user == reader.id]
        return len(reminders) >= 2 and all(status == "SENT" for *_, status in notices.values())

    await eventually(notices_settled, what="both reminders written and every notice SENT")
    # /metrics: each process counts its own answers (Prometheus scrapes each and adds
    # them); together they count every borrowing the balancer let through, once.
    scraped = []
    async with httpx.AsyncClient(timeout=15) as http:
        for port in stack.apis:
            response = await http.get(
                f"http://127.0.0.1:{port}/metrics",
                headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
            )
            assert response.status_code == 200
            scraped.append(response.text)
    borrowed_201 = sum(
        metric(
            text,
            "library_http_requests_total",
            method="POST",
            route="/api/borrowings/",
            status="201",
        )
        for text in scraped
    )
    assert borrowed_201 == load.borrowed + 3  # the hold's loan, the key's first and replay
    sent = len(recorded)
    for text in scraped:  # the workers' job counts, the same from any process
        assert metric(text, "library_jobs_run_total", job=notification_jobs.DELIVER) >= sent

    # One more slot of every cron: the reminder sweep writes nothing more, and every slot
    # up to 3 s ago has finished.
    await asyncio.sleep(2.5)
    notices = await member_notices(stack.database_url)
    reminders = Counter(kind for user, kind, _ in notices.values() if user == reader.id)
    assert reminders == {notice_kinds.DUE_SOON: 1, notice_kinds.OVERDUE: 1}
    kinds = Counter(kind for _, kind, _ in notices.values())
    assert kinds[notice_kinds.RECEIPT] >= 1 and kinds[notice_kinds.HOLD_READY] == 1
    caught = Counter(str(mail.message["Message-ID"]) for mail in stack.mailbox.messages())
    assert caught == Counter(f"<notice-{notice_id}@{MAIL_DOMAIN}>" for notice_id in notices)

    # Each cron ran once per slot across the two workers, and no slot was missed.
    slots = cron_slots(stack)
    finished = Counter(slot for worker in slots.values() for slot in worker)
    assert [slot for slot, runs in finished.items() if runs > 1] == []
    assert all(slots.values()), slots  # both workers took slots
    first_ms, last_ms = int((started + 3) * 1000), int((time.time() - 3) * 1000)
    for job in CRONS:
        seen = {ms for name, ms in finished if name == job}
        # arq's slots: on the second, plus its fixed 123.456 ms (the same on every worker)
        expected = set(range(first_ms - first_ms % 2000 + 2123, last_ms, 2000))
        assert expected <= seen, (job, sorted(expected - seen))


async def test_a_worker_killed_mid_send_loses_nothing(stack: Stack, factory):
    """SIGKILL of a worker while it sends and holds a cron's slot: the other carries on,
    every message arrives, and only those in flight at the kill may arrive twice."""
    baseline = len(stack.telegram.sends)  # the suite emptied the tables: from now on
    tokens, books = await prepare(stack, factory, members=2)
    load = Load(stack, tokens, books)
    await load.run(cycles=1)  # leaves nothing pending: every payment is PAID
    await eventually(lambda: all_sent(stack), what="the first messages")
    async with httpx.AsyncClient(base_url=stack.url, timeout=15) as http:
        unpaid = await http.post(  # a payment the worker's expiry poll will ask Stripe about
            "/api/borrowings/",
            json={"book": books[0], "expected_return_date": DUE},
            headers={"Authorization": f"Bearer {tokens[0]}"},
        )
        assert unpaid.status_code == 201

    stack.telegram.delay = 0.6  # slow, yet within TELEGRAM_SEND_TIMEOUT_SECONDS (1 s)
    stack.stripe_gate.held.clear()
    stack.stripe_gate.open.clear()
    try:
        deadline = time.monotonic() + 10
        while not stack.stripe_gate.held:  # the next poll slot, on one of the workers
            assert time.monotonic() < deadline, "no expiry poll reached Stripe"
            await asyncio.sleep(0.05)
        victim = stack.stripe_gate.held[0].rpartition("_")[2]
        survivor = next(name for name in stack.workers if name != victim)
        # Messages to send while Telegram answers slowly, until the victim is sending one
        # (which worker takes a job is up to arq: a single cycle's few messages could all
        # go to the survivor).
        feeding = asyncio.ensure_future(load.run(cycles=8, pause=0.1))
        deadline = time.monotonic() + 30
        while not stack.telegram.in_flight(victim):
            assert time.monotonic() < deadline, "the victim never sent"
            assert not feeding.done() or feeding.exception() is None
            await asyncio.sleep(0.02)
        stack.workers[victim].signal(signal.SIGKILL)
        killed = time.monotonic()
        stack.workers[victim].wait(5)
        killed_at = time.time()
        in_flight = {  # the sends the kill cut off: Telegram had them, the victim no answer
            send.text
            for send in stack.telegram.sends[baseline:]
            if send.worker == victim and (send.answered is None or send.answered >= killed)
        }
        assert in_flight
    finally:
        stack.telegram.delay = 0.0
        stack.stripe_gate.open.set()
    await feeding  # the API never depended on the worker: the load goes on to its end

    # Its sends go out again (arq runs a dead worker's job again after the job timeout
    # plus its grace, 4 s here), by the survivor; the survivor's poll slots go on meanwhile.
    await eventually(lambda: all_sent(stack), what="the killed worker's messages")
    recorded = await notifications(stack.database_url)
    delivered = Counter(stack.telegram.delivered()[baseline:])
    assert set(delivered) == {text for text, _ in recorded.values()}, await mismatch(
        stack, delivered
    )
    twice = {text for text, times in delivered.items() if times > 1}
    assert twice <= in_flight  # the lease rule: only a send cut off by the kill repeats
    polls_after = [
        ms
        for job, ms in cron_slots(stack)[survivor]
        if job == payment_jobs.POLL_EXPIRED_SESSIONS and ms > killed_at * 1000
    ]
    assert polls_after, "the expiry poll stopped with the killed worker"
    stack.workers[victim].start()
