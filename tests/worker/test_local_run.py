"""The local run leaves no server behind: not when its terminal closes (SIGHUP to the process
group), not when it is killed outright, and a start stops what an older run left."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from library_service.dev.embedded import EmbeddedRedis, free_port
from tests.servers import data_folder

pytestmark = [pytest.mark.slow, pytest.mark.waits]

COMMAND = Path(sys.executable).parent / "library-service"
RUN_DATA = data_folder("run-test")  # kept between test runs: the database is created once


def gone(pid: int) -> bool:
    """Exited (a zombie waiting for a parent that never reaps it counts as exited)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def all_gone(pids: list[int], within: float = 20) -> bool:
    for _ in range(int(within / 0.1)):
        if all(gone(pid) for pid in pids):
            return True
        await asyncio.sleep(0.1)
    return False


def redis_pids(data_dir: Path) -> list[int]:
    pids = []
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "redis-server":
            try:
                if Path(process.cwd()).parent == data_dir:
                    pids.append(process.pid)
            except psutil.Error:
                continue
    return pids


def postgres_pid(folder: Path) -> int:
    return int((folder / "postmaster.pid").read_text().split()[0])


@dataclass
class LocalRun:
    process: asyncio.subprocess.Process
    servers: list[int]  # PostgreSQL's postmaster and redis-server


@pytest.fixture
async def local_run(tmp_path) -> AsyncIterator[LocalRun]:
    """`library-service run` as `make run` starts it, with no service configured: the
    embedded PostgreSQL and Redis and the sandbox Stripe, serving on a free port."""
    port = free_port()
    environment = {name: value for name, value in os.environ.items() if name in {"PATH", "HOME"}}
    environment |= {"LIBRARY_DATA_DIR": str(RUN_DATA), "BCRYPT_ROUNDS": "4"}
    # Any free ports for the sandbox Stripe and the mailbox: a `make run` of this checkout,
    # or another test process, may hold the fixed ones.
    environment |= dict.fromkeys(
        ("SANDBOX_STRIPE_PORT", "SANDBOX_SMTP_PORT", "SANDBOX_MAILBOX_PORT"), "0"
    )
    with (tmp_path / "run.log").open("w") as log:
        process = await asyncio.create_subprocess_exec(
            COMMAND,
            "run",
            "--port",
            str(port),
            env=environment,
            cwd=tmp_path,
            stdout=log,
            stderr=log,
            start_new_session=True,  # a process group of its own, as a terminal gives it
        )
    try:
        assert await ready(port, process), (tmp_path / "run.log").read_text()
        yield LocalRun(process, [postgres_pid(RUN_DATA / "postgres"), *redis_pids(RUN_DATA)])
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGTERM)
            await process.wait()


async def ready(port: int, process: asyncio.subprocess.Process) -> bool:
    """Whether the run answers /ready within a minute (False as soon as it exits)."""
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            if process.returncode is not None:
                return False
            try:
                if (await http.get(f"http://127.0.0.1:{port}/ready")).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    return False


async def test_closing_the_terminal_stops_the_embedded_servers(local_run: LocalRun):
    assert len(local_run.servers) == 2 and not any(gone(pid) for pid in local_run.servers)
    os.killpg(local_run.process.pid, signal.SIGHUP)  # what a closed terminal sends
    assert await asyncio.wait_for(local_run.process.wait(), 60) == 0
    assert await all_gone(local_run.servers)


async def test_a_killed_run_leaves_no_server_behind(local_run: LocalRun):
    os.killpg(local_run.process.pid, signal.SIGKILL)  # no clean-up code runs at all
    await local_run.process.wait()
    assert await all_gone(local_run.servers)


def start_and_abandon(data_dir: Path) -> int:
    """Start an embedded PostgreSQL and Redis in a process that then dies with no clean-up
    at all, its guardian first, as a crashed run of an older version left them; returns
    the redis-server's pid."""
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from library_service.dev import embedded\n"
        "data = Path(sys.argv[1])\n"
        "embedded.start_postgres(data / 'postgres')\n"
        "redis = embedded.EmbeddedRedis(data / 'redis').start()\n"
        "for guardian in getattr(embedded, '_guardians', {}).values():\n"
        "    guardian.kill()\n"
        "    guardian.wait()\n"
        "print(redis.process.pid, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    finished = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script, str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return int(finished.stdout)


async def test_a_start_stops_the_servers_an_abandoned_run_left():
    data_dir = data_folder("abandoned-test")
    abandoned = [await asyncio.to_thread(start_and_abandon, data_dir)]
    abandoned.append(postgres_pid(data_dir / "postgres"))
    await asyncio.sleep(0.5)
    assert not any(gone(pid) for pid in abandoned)  # nobody stopped them

    redis = await asyncio.to_thread(EmbeddedRedis(data_dir / "redis").start)
    try:
        assert await all_gone(abandoned)
    finally:
        redis.stop()
