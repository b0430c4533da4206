"""Deploys that drop nothing: the API processes restarted one at a time under load, a
worker restarted mid-sends, PgBouncer restarted under load."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter

import httpx
import pytest

from library_service.dev.embedded import free_port
from library_service.worker import JOB_COMPLETION_WAIT_SECONDS
from tests.scaleout.conftest import COMMAND, DRAIN_SECONDS, Process, Stack
from tests.scaleout.test_many_processes import (
    Load,
    all_sent,
    eventually,
    mismatch,
    notifications,
    prepare,
)

pytestmark = [pytest.mark.scaleout, pytest.mark.slow]


async def steady(load: Load, stop: asyncio.Event, *, limit: int, pause: float) -> None:
    """Members cycling (borrow, pay, return) until `stop`, at most `limit` cycles each, with
    `pause` seconds between a member's cycles: a steady flow of requests through every
    restart, not as many as the machine can answer (the restarts would wait for the CPU)."""

    async def member(index: int) -> None:
        async with httpx.AsyncClient(base_url=load.stack.url, timeout=15) as http:
            for _ in range(limit):
                if stop.is_set():
                    return
                await load.cycle(http, load.tokens[index], load.books[index])
                await asyncio.sleep(pause)

    await asyncio.gather(*(member(i) for i in range(len(load.tokens))))


async def test_restarting_every_api_process_under_load_fails_no_request(stack: Stack, factory):
    baseline = len(stack.telegram.sends)
    tokens, books = await prepare(stack, factory, members=4)
    load = Load(stack, tokens, books)
    stop = asyncio.Event()
    running = asyncio.create_task(steady(load, stop, limit=200, pause=0.2))
    stopping_checks = []
    try:
        for port, api in stack.apis.items():
            signalled = time.monotonic()
            api.signal(signal.SIGTERM)
            await asyncio.to_thread(api.wait, DRAIN_SECONDS + 25)
            exited = time.monotonic()
            stopping_checks += [
                check
                for check in stack.balancer.checks
                if check.port == port and signalled < check.sent < exited
            ]
            api.start()
            await asyncio.to_thread(stack.wait_ready, port)
        # A worker restarted mid-sends: SIGTERM finishes the sends it holds, then it exits.
        stack.telegram.delay = 0.3
        worker = stack.workers["a"]
        held: list[str] = []

        async def sending() -> bool:
            held[:] = stack.telegram.in_flight("a")
            return bool(held)

        async def feed() -> None:
            # Messages keep coming until "a" holds one (the steady load may have run its
            # course, and which worker takes a job is arq's choice).
            while not held:
                await load.run(cycles=1, pause=0.1)

        feeding = asyncio.create_task(feed())
        await eventually(sending, within=60, what="worker a holding a send")
        worker.signal(signal.SIGTERM)
        # It may take up to the job-completion wait (30 s) to let its jobs finish.
        assert await asyncio.to_thread(worker.wait, JOB_COMPLETION_WAIT_SECONDS + 15) == 0
        await feeding
        finished = [s for s in stack.telegram.sends if s.worker == "a" and s.text in held]
        assert finished and all(send.answered for send in finished)  # finished, not cut off
        stack.telegram.delay = 0.0
        worker.start()
    finally:
        stop.set()
        await running
    assert load.requests > 50
    assert load.failures == []
    # The balancer's checks while a process drained: never a 200.
    assert stopping_checks
    assert all(check.status != 200 for check in stopping_checks)

    await eventually(lambda: all_sent(stack), what="every message SENT")
    recorded = await notifications(stack.database_url)
    delivered = Counter(stack.telegram.delivered()[baseline:])
    expected = Counter(text for text, _ in recorded.values())
    assert delivered == expected, await mismatch(stack, delivered)  # nothing twice
    print(f"restarts: {load.requests} requests, {len(load.failures)} failed")


async def test_a_pgbouncer_restart_answers_503_never_500(stack: Stack, factory):
    if stack.bouncer is None:
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer)")
    tokens, _ = await prepare(stack, factory, members=1)
    auth = {"Authorization": f"Bearer {tokens[0]}"}
    statuses: Counter[int] = Counter()
    codes: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=stack.url, timeout=15) as http:

        async def poke(count: int) -> None:
            for _ in range(count):
                response = await http.get("/api/borrowings/", headers=auth)
                statuses[response.status_code] += 1
                if response.status_code != 200:
                    codes[response.json().get("code", "")] += 1

        await poke(5)
        stack.bouncer.stop()
        await poke(10)
        stack.bouncer.start()
        await asyncio.sleep(0.5)
        deadline = time.monotonic() + 10
        while (await http.get("/api/borrowings/", headers=auth)).status_code != 200:
            assert time.monotonic() < deadline, "not back after PgBouncer came back"
            await asyncio.sleep(0.2)
    assert 500 not in statuses
    assert statuses[503] >= 10
    assert set(codes) == {"database_unavailable"}


async def test_an_api_of_two_worker_processes_drains_in_both(stack: Stack):
    """How compose and Kubernetes run the API (`--workers 2`): uvicorn's parent passes
    SIGTERM on to both worker processes (within half a second: it reads signals twice a
    second), each keeps serving through the drain with `/ready` at 503 and connections
    closed after each answer, and the whole exits cleanly."""
    port = free_port()
    argv = [COMMAND, "run", "--host=127.0.0.1", f"--port={port}", "--no-worker", "--workers=2"]
    api = Process("api-two-workers", argv, stack.api_environment)

    def log() -> str:
        return api.log.read_text(errors="replace")

    async def both_started() -> bool:
        return log().count("Application startup complete") == 2

    try:
        await eventually(both_started, within=60, what="both worker processes started")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            assert (await http.get("/ready")).status_code == 200
            api.signal(signal.SIGTERM)

            async def draining() -> bool:
                return (await http.get("/ready")).status_code == 503

            await eventually(draining, within=5, what="the drain started")
            answers, started = [], time.monotonic()
            while time.monotonic() - started < DRAIN_SECONDS * 0.6:
                # A new connection each time: the kernel spreads them over both workers.
                answers.append(await http.get("/ready", headers={"Connection": "close"}))
                answers.append(await http.get("/api/books/", headers={"Connection": "close"}))
        assert len(answers) >= 2  # as many as fit in the drain: fewer on a busy machine
        assert {a.status_code for a in answers[0::2]} == {503}  # no new traffic, please
        assert {a.status_code for a in answers[1::2]} == {200}  # yet every request served
        assert {a.headers["connection"] for a in answers} == {"close"}
        assert api.wait(timeout=30) == 0
        assert log().count("SIGTERM: /ready answers 503") == 2  # each worker process drained
    finally:
        api.stop()
