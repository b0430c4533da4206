"""The worker's options that decide how soon a dead worker's jobs run again."""

from __future__ import annotations

import asyncio

from arq.worker import Worker

from library_service.supervisor import WorkerSupervisor
from library_service.worker import worker_options


def test_a_dead_workers_jobs_run_again_after_the_job_timeout(settings):
    """arq keeps a job's in-progress mark for the longest timeout of all functions, plus
    10 s: one function with a long timeout of its own would hold every job of a killed
    worker (staff messages included) for as long."""
    worker = Worker(**worker_options(settings), redis_settings=None)
    assert worker.in_progress_timeout_s == settings.WORKER_JOB_TIMEOUT_SECONDS + 10


async def test_the_grace_after_the_job_timeout_is_a_setting(settings):
    """The service's worker keeps a job's mark for the job timeout plus
    WORKER_JOB_GRACE_SECONDS (arq's 10 s by default)."""
    assert settings.WORKER_JOB_GRACE_SECONDS == 10
    config = settings.model_copy(
        update={
            "WORKER_JOB_GRACE_SECONDS": 1.5,
            "WORKER_HEARTBEAT_SECONDS": 0.1,
            "TELEGRAM_BOT_TOKEN": None,
            "SMTP_HOST": None,
        }
    )
    supervisor = WorkerSupervisor(config)
    running = asyncio.create_task(supervisor.run())
    try:
        async with asyncio.timeout(10):
            while supervisor._worker is None:  # noqa: ASYNC110
                await asyncio.sleep(0.05)  # no event marks a worker's start
        marked = supervisor._worker.in_progress_timeout_s
        assert marked == settings.WORKER_JOB_TIMEOUT_SECONDS + 1.5
    finally:
        supervisor.stop()
        await running
