"""The jobs a commit defers reach arq's queue in one round trip, exactly as arq's own
`enqueue_job` would have put them there: a worker reads them back with arq's code."""

from __future__ import annotations

import pytest
from arq.connections import ArqRedis
from arq.constants import default_queue_name, job_key_prefix, result_key_prefix

from library_service.core.jobs import DeferredJob, enqueue_jobs


@pytest.fixture
async def queue(app) -> ArqRedis:
    queue: ArqRedis = app.state.queue
    await queue.flushdb()  # jobs queued by earlier tests
    return queue


async def test_a_commits_jobs_are_queued_as_arq_queues_them(queue):
    queued = await enqueue_jobs(
        queue,
        [
            DeferredJob("deliver_notification", (7,), "notification:7"),
            DeferredJob("deliver_notice", (8, "x"), None),  # arq draws an id itself
        ],
    )
    assert queued == 2
    jobs = {job.function: job for job in await queue.queued_jobs()}
    assert jobs["deliver_notification"].args == (7,)
    assert jobs["deliver_notification"].job_id == "notification:7"
    assert jobs["deliver_notice"].args == (8, "x")
    assert len(jobs["deliver_notice"].job_id) == 32
    # arq's expiry for a job due now: its default extra time
    ttl_ms = await queue.pttl(job_key_prefix + "notification:7")
    assert queue.expires_extra_ms - 5_000 < ttl_ms <= queue.expires_extra_ms


async def test_a_job_arq_knows_already_is_left_alone(queue):
    await queue.enqueue_job("deliver_notification", 1, _job_id="notification:1")  # queued
    await queue.set(result_key_prefix + "notification:2", b"done")  # ran, result kept
    queued = await enqueue_jobs(
        queue,
        [
            DeferredJob("deliver_notification", (1,), "notification:1"),
            DeferredJob("deliver_notification", (2,), "notification:2"),
            DeferredJob("deliver_notification", (3,), "notification:3"),
        ],
    )
    assert queued == 1
    assert sorted(await queue.zrange(default_queue_name, 0, -1)) == [
        b"notification:1",
        b"notification:3",
    ]
