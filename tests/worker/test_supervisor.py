"""The supervisor ends a stopping worker even when arq's cancellation of the worker's main
task is lost on its way (as it once was: the worker logged "wait complete", took no more
jobs, and stayed up until a second signal)."""

from __future__ import annotations

import asyncio
import logging

from library_service.supervisor import CANCEL_AGAIN_SECONDS, HeartbeatWorker, WorkerSupervisor


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
    config = settings.model_copy(
        update={"WORKER_HEARTBEAT_SECONDS": 0.1, "TELEGRAM_BOT_TOKEN": None, "SMTP_HOST": None}
    )
    supervisor = WorkerSupervisor(config)
    running = asyncio.create_task(supervisor.run())
    async with asyncio.timeout(10):
        while supervisor._worker is None or supervisor._worker.beats == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # the worker's first beat has no event to wait on

    with caplog.at_level(logging.WARNING, logger="library_service.supervisor"):
        supervisor.stop()
        async with asyncio.timeout(CANCEL_AGAIN_SECONDS + 5):
            await running
    assert len(swallowed) == 1
    assert "cancelling it again" in caplog.text
