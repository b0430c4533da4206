"""The load generator: a minimal HTTP/1.1 keep-alive client on asyncio streams and uvloop.

It runs in its own process (see run.py), one connection per virtual user, requests encoded
to bytes ahead of time where they do not change. It reads the status line, the headers and a
Content-Length (or chunked) body, and nothing more, so it leaves the CPU to the server.

Latencies are plain measured times from writing a request to reading its last byte (not
corrected for coordinated omission: a slow answer delays that user's next request).
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import uvloop

HOST = "127.0.0.1"
REQUEST_TIMEOUT_SECONDS = 60.0
SCENARIOS = ("books", "borrowings", "cycle", "token")


# -- the HTTP client ---------------------------------------------------------------------


class HttpError(Exception):
    """The server broke the protocol (or closed the connection mid-answer)."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    head: bytes  # status line and headers, as received
    body: bytes

    def header(self, name: str) -> str | None:
        """A header's value (first occurrence), found case-insensitively."""
        needle = b"\r\n" + name.lower().encode() + b":"
        start = self.head.lower().find(needle)
        if start < 0:
            return None
        start += len(needle)
        end = self.head.find(b"\r\n", start)
        return self.head[start:end].strip().decode("latin-1")


def encode_request(
    method: str,
    target: str,
    *,
    port: int,
    headers: Sequence[tuple[str, str]] = (),
    json_body: object | None = None,
) -> bytes:
    """A complete HTTP/1.1 request as bytes, ready to be written as many times as needed."""
    body = b"" if json_body is None else json.dumps(json_body, separators=(",", ":")).encode()
    lines = [f"{method} {target} HTTP/1.1", f"Host: {HOST}:{port}", "User-Agent: library-bench"]
    lines += [f"{name}: {value}" for name, value in headers]
    if json_body is not None:
        lines.append("Content-Type: application/json")
    if json_body is not None or method in {"POST", "PUT", "PATCH"}:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class HttpConnection:
    """One keep-alive connection; reconnects on the next request after any failure."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(HOST, self.port)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def request(self, raw: bytes) -> Response:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                return await self._exchange(raw)
        except BaseException:
            self.close()  # the stream is in an unknown state
            raise

    async def _exchange(self, raw: bytes) -> Response:
        if self._writer is None:
            await self.connect()
        reader, writer = self._reader, self._writer
        assert reader is not None
        assert writer is not None
        writer.write(raw)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            raise HttpError("connection closed before the response") from exc
        if not head.startswith(b"HTTP/1.") or len(head) < 12:
            raise HttpError(f"not an HTTP response: {head[:40]!r}")
        status = int(head[9:12])
        lower = head.lower()
        length_at = lower.find(b"\r\ncontent-length:")
        if length_at >= 0:
            end = lower.index(b"\r\n", length_at + 2)
            length = int(lower[length_at + 17 : end])
            body = await reader.readexactly(length) if length else b""
        elif b"\r\ntransfer-encoding: chunked" in lower:
            body = await self._read_chunked(reader)
        elif status in {204, 304} or 100 <= status < 200:
            body = b""
        else:  # delimited by the end of the connection
            body = await reader.read()
            self.close()
        if b"\r\nconnection: close" in lower:
            self.close()
        return Response(status, head, body)

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers expected
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)


# -- what a cell is and what it measures --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Member:
    email: str
    access: str  # bearer token


@dataclass(frozen=True, slots=True)
class CellSpec:
    scenario: str
    concurrency: int
    seconds: float
    warmup: float
    api_port: int
    sandbox_port: int
    password: str
    members: tuple[Member, ...]
    book_ids: tuple[int, ...]
    first_member: int = 0  # the cycle's users: members[first_member + i] (wrapping)


@dataclass(frozen=True, slots=True)
class LatencyStats:
    requests: int
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass(slots=True)
class CellResult:
    scenario: str
    concurrency: int
    window_seconds: float
    requests: int  # answered within the window (whatever the status)
    rps: float
    latency: LatencyStats
    steps: dict[str, LatencyStats]  # per request kind (the cycle has four)
    errors: int  # non-2xx/3xx answers and exceptions within the window
    error_kinds: dict[str, int]  # "POST /api/borrowings/ 400": n, "GET ... TimeoutError": n
    server_errors: int  # 5xx seen at any time, warm-up and drain included
    borrowed: int  # 201 borrowings at any time (the database must hold exactly these)
    returned: int  # 200 returns at any time
    loadgen_cpu_percent: float
    elapsed_seconds: float


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted values (0 when there are none)."""
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summarize(latencies: Sequence[float]) -> LatencyStats:
    ordered = sorted(latencies)
    return LatencyStats(
        requests=len(ordered),
        p50_ms=percentile(ordered, 0.50) * 1000,
        p99_ms=percentile(ordered, 0.99) * 1000,
        max_ms=(ordered[-1] * 1000) if ordered else 0.0,
    )


@dataclass(slots=True)
class Recorder:
    """Keeps what completes inside [start, end]; warm-up and drain only count 5xx."""

    start: float
    end: float
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    server_errors: int = 0
    borrowed: int = 0
    returned: int = 0

    def answered(self, label: str, started: float, status: int) -> None:
        finished = time.perf_counter()
        if status >= 500:
            self.server_errors += 1
        if not self.start <= finished <= self.end:
            return
        self.latencies.setdefault(label, []).append(finished - started)
        if status >= 400:
            self.errors[f"{label} {status}"] += 1

    def failed(self, label: str, exc: BaseException) -> None:
        if self.start <= time.perf_counter() <= self.end:
            self.errors[f"{label} {type(exc).__name__}"] += 1


class Call:
    """Sends requests for a virtual user and records each one under its label."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    async def __call__(self, connection: HttpConnection, label: str, raw: bytes) -> Response | None:
        started = time.perf_counter()
        try:
            response = await connection.request(raw)
        except (OSError, HttpError, ValueError, TimeoutError, asyncio.IncompleteReadError) as exc:
            self.recorder.failed(label, exc)
            return None
        self.recorder.answered(label, started, response.status)
        return response


# -- the scenarios ------------------------------------------------------------------------

VirtualUser = Callable[["Cell", int], Awaitable[None]]

BOOKS_OFFSETS = (0, 20, 40, 60, 80, 100)


CONNECT_SPACING_SECONDS = 0.005


class Cell:
    def __init__(self, spec: CellSpec, recorder: Recorder) -> None:
        self.spec = spec
        self.recorder = recorder
        self.call = Call(recorder)
        self._connecting = asyncio.Lock()

    async def connect(self, connection: HttpConnection) -> None:
        """Open connections one at a time, a few ms apart: a burst of connects is accepted
        by whichever uvicorn worker wakes first, which can take them all."""
        async with self._connecting:
            await connection.connect()
            await asyncio.sleep(CONNECT_SPACING_SECONDS)

    def running(self) -> bool:
        return time.perf_counter() < self.recorder.end

    def member(self, index: int) -> Member:
        return self.spec.members[index % len(self.spec.members)]

    def bearer(self, member: Member) -> tuple[str, str]:
        return ("Authorization", f"Bearer {member.access}")


async def books_user(cell: Cell, index: int) -> None:
    port = cell.spec.api_port
    requests = [
        encode_request("GET", f"/api/books/?limit=20&offset={offset}", port=port)
        for offset in BOOKS_OFFSETS
    ]
    api = HttpConnection(port)
    await cell.connect(api)
    turn = index
    while cell.running():
        turn += 1
        await cell.call(api, "GET /api/books/", requests[turn % len(requests)])
    api.close()


async def borrowings_user(cell: Cell, index: int) -> None:
    member = cell.member(index)
    raw = encode_request(
        "GET", "/api/borrowings/", port=cell.spec.api_port, headers=[cell.bearer(member)]
    )
    api = HttpConnection(cell.spec.api_port)
    await cell.connect(api)
    while cell.running():
        await cell.call(api, "GET /api/borrowings/", raw)
    api.close()


async def token_user(cell: Cell, index: int) -> None:
    member = cell.member(index)
    raw = encode_request(
        "POST",
        "/api/users/token/",
        port=cell.spec.api_port,
        json_body={"email": member.email, "password": cell.spec.password},
    )
    api = HttpConnection(cell.spec.api_port)
    await cell.connect(api)
    while cell.running():
        await cell.call(api, "POST /api/users/token/", raw)
    api.close()


async def cycle_user(cell: Cell, index: int) -> None:
    """Borrow -> pay in the sandbox -> follow its redirect to /success/ -> return, repeated.

    Each user is its own member (loan limit, fines). A cycle under way when the window closes
    is finished unrecorded, so no borrowing is left active.
    """
    spec = cell.spec
    member = cell.member(spec.first_member + index)
    auth = cell.bearer(member)
    api = HttpConnection(spec.api_port)
    sandbox = HttpConnection(spec.sandbox_port)
    await cell.connect(api)
    await cell.connect(sandbox)
    rng = random.Random(index)
    due = (datetime.now(UTC).date() + timedelta(days=7)).isoformat()
    while cell.running():
        book = rng.choice(spec.book_ids)
        create = encode_request(
            "POST",
            "/api/borrowings/",
            port=spec.api_port,
            headers=[auth],
            json_body={"book": book, "expected_return_date": due},
        )
        created = await cell.call(api, "POST /api/borrowings/", create)
        if created is None or created.status != 201:
            continue
        cell.recorder.borrowed += 1
        borrowing = json.loads(created.body)
        await _pay(cell, api, sandbox, borrowing["payments"][0]["session_url"])
        back = encode_request(
            "POST", f"/api/borrowings/{borrowing['id']}/return/", port=spec.api_port, headers=[auth]
        )
        returned = await cell.call(api, "POST /api/borrowings/{id}/return/", back)
        if returned is not None and returned.status == 200:
            cell.recorder.returned += 1
    api.close()
    sandbox.close()


async def _pay(cell: Cell, api: HttpConnection, sandbox: HttpConnection, session_url: str) -> None:
    spec = cell.spec
    url = urlsplit(session_url)
    if url.port != spec.sandbox_port:
        cell.recorder.failed("POST <session_url>/pay", HttpError(f"foreign URL {session_url}"))
        return
    pay = encode_request("POST", url.path + "/pay", port=spec.sandbox_port)
    paid = await cell.call(sandbox, "POST <session_url>/pay", pay)
    location = paid.header("location") if paid is not None and paid.status == 303 else None
    if location is None:
        return
    target = urlsplit(location)
    if target.port != spec.api_port:
        cell.recorder.failed("GET /api/payments/success/", HttpError(f"foreign URL {location}"))
        return
    success = encode_request("GET", f"{target.path}?{target.query}", port=spec.api_port)
    await cell.call(api, "GET /api/payments/success/", success)


USERS: dict[str, VirtualUser] = {
    "books": books_user,
    "borrowings": borrowings_user,
    "cycle": cycle_user,
    "token": token_user,
}


# -- entry points (called in the load generator's process) ---------------------------------


def run_cell(spec: CellSpec) -> CellResult:
    """Run one cell: warm-up, then the measured window, then let the users finish."""
    return uvloop.run(_run_cell(spec))


async def _run_cell(spec: CellSpec) -> CellResult:
    user = USERS[spec.scenario]
    gc.collect()
    gc.disable()  # no collector pauses inside the measurement
    cpu_before = time.process_time()
    began = time.perf_counter()
    start = began + spec.warmup
    recorder = Recorder(start=start, end=start + spec.seconds)
    cell = Cell(spec, recorder)
    try:
        await asyncio.gather(*(user(cell, index) for index in range(spec.concurrency)))
    finally:
        gc.enable()
    elapsed = time.perf_counter() - began
    everything = [value for values in recorder.latencies.values() for value in values]
    latency = summarize(everything)
    return CellResult(
        scenario=spec.scenario,
        concurrency=spec.concurrency,
        window_seconds=spec.seconds,
        requests=latency.requests,
        rps=latency.requests / spec.seconds,
        latency=latency,
        steps={label: summarize(values) for label, values in recorder.latencies.items()},
        errors=sum(recorder.errors.values()),
        error_kinds=dict(recorder.errors.most_common()),
        server_errors=recorder.server_errors,
        borrowed=recorder.borrowed,
        returned=recorder.returned,
        loadgen_cpu_percent=100 * (time.process_time() - cpu_before) / elapsed,
        elapsed_seconds=elapsed,
    )


def obtain_tokens(api_port: int, emails: Sequence[str], password: str, parallel: int) -> list[str]:
    """Log every member in through POST /api/users/token/; returns their access tokens."""
    return uvloop.run(_obtain_tokens(api_port, emails, password, parallel))


async def _obtain_tokens(
    api_port: int, emails: Sequence[str], password: str, parallel: int
) -> list[str]:
    tokens: list[str] = [""] * len(emails)
    queue = list(enumerate(emails))

    async def worker() -> None:
        connection = HttpConnection(api_port)
        while queue:
            index, email = queue.pop()
            raw = encode_request(
                "POST",
                "/api/users/token/",
                port=api_port,
                json_body={"email": email, "password": password},
            )
            response = await connection.request(raw)
            if response.status != 200:
                raise RuntimeError(
                    f"login of {email} answered {response.status}: {response.body!r}"
                )
            tokens[index] = json.loads(response.body)["access"]
        connection.close()

    await asyncio.gather(*(worker() for _ in range(parallel)))
    return tokens
