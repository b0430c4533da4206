"""The supervisor's arq workers: the grace after which a dead worker's jobs run again, and a
stopping worker ended even when arq's cancellation of its main task is lost on its way (as it
once was: the worker logged "wait complete", took no more jobs, and stayed up until a second
signal)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from library_service.supervisor import CANCEL_AGAIN_SECONDS, HeartbeatWorker, WorkerSupervisor


async def started(settings: Any, **updates: Any) -> tuple[WorkerSupervisor, asyncio.Task[None]]:
    """A supervisor (and the task running it) whose worker has beaten once; no Telegram or
    SMTP server to reach."""
    config = settings.model_copy(
        update={
            "WORKER_HEARTBEAT_SECONDS": 0.1,
            "TELEGRAM_BOT_TOKEN": None,
            "SMTP_HOST": None,
            **updates,
        }
    )
    supervisor = WorkerSupervisor(config)
    running = asyncio.create_task(supervisor.run())
    async with asyncio.timeout(10):
        while supervisor._worker is None or supervisor._worker.beats == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # the worker's first beat has no event to wait on
    return supervisor, running


async def test_the_grace_after_the_job_timeout_is_a_setting(settings):
    """The service's worker keeps a job's in-progress mark for the job timeout plus
    WORKER_JOB_GRACE_SECONDS (arq's 10 s by default, tests/worker/test_options.py)."""
    assert settings.WORKER_JOB_GRACE_SECONDS == 10
    supervisor, running = await started(settings, WORKER_JOB_GRACE_SECONDS=1.5)
    try:
        assert supervisor._worker is not None
        marked = supervisor._worker.in_progress_timeout_s
        assert marked == settings.WORKER_JOB_TIMEOUT_SECONDS + 1.5
    finally:
        supervisor.stop()
        await running


async def test_a_stopping_worker_ends_though_its_cancellation_was_lost(
    settings, monkeypatch, caplog
):
    swallowed: list[asyncio.CancelledError] = []
    arq_main = HeartbeatWorker.main

    async def main_losing_a_cancellation(self: HeartbeatWorker) -> None:
        try:
            await arq_main(self)
        except asyncio.CancelledError as lost:  # as a library call deep inside might
            swallowed.append(lost)
        await asyncio.Event().wait()  # up, taking no job, until cancelled again

    monkeypatch.setattr(HeartbeatWorker, "main", main_losing_a_cancellation)
    supervisor, running = await started(settings)

    with caplog.at_level(logging.WARNING, logger="library_service.supervisor"):
        supervisor.stop()
        async with asyncio.timeout(CANCEL_AGAIN_SECONDS + 5):
            await running
    assert len(swallowed) == 1
    assert "cancelling it again" in caplog.text
