"""The worker's options that decide how soon a dead worker's jobs run again."""

from __future__ import annotations

from arq.worker import Worker

from library_service.worker import worker_options


def test_a_dead_workers_jobs_run_again_after_the_job_timeout(settings):
    """arq keeps a job's in-progress mark for the longest timeout of all functions, plus
    10 s: one function with a long timeout of its own would hold every job of a killed
    worker (staff messages included) for as long."""
    worker = Worker(**worker_options(settings), redis_settings=None)
    assert worker.in_progress_timeout_s == settings.WORKER_JOB_TIMEOUT_SECONDS + 10
