"""Jobs deferred by a transaction and queued only once it has committed.

A job enqueued before the commit could run before its data exists, or for data that was
rolled back. Losing the enqueue (Redis down) is harmless: every job has a database-backed
sweep that finds the work again.

The jobs of one commit go to Redis in one round trip. arq's `enqueue_job` takes three for
each job (WATCH, EXISTS, then MULTI … EXEC): about 240 µs of CPU a job here, against about
100 µs for a commit's jobs as one script, which does what `enqueue_job` does, atomically:
a job whose id is queued, running or kept as a result is left alone; otherwise its payload
(arq's own serialisation) is stored with arq's expiry and its id added to arq's queue.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from arq.constants import default_queue_name, job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms

if TYPE_CHECKING:
    from arq.connections import ArqRedis
    from sqlalchemy.ext.asyncio import AsyncSession

logger = logging.getLogger(__name__)

_DEFERRED = "deferred_jobs"
ENQUEUE_TIMEOUT_SECONDS = 2.0

# KEYS: each job's key and result key, in pairs. ARGV: the queue, the score (now, in ms),
# the expiry in ms, then each job's id and payload, in pairs. Returns how many were queued.
_ENQUEUE = """
local queued = 0
for i = 1, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i], KEYS[i + 1]) == 0 then
    redis.call('PSETEX', KEYS[i], ARGV[3], ARGV[i + 4])
    redis.call('ZADD', ARGV[1], ARGV[2], ARGV[i + 3])
    queued = queued + 1
  end
end
return queued
"""


@dataclass(frozen=True, slots=True)
class DeferredJob:
    function: str
    args: tuple[Any, ...]
    job_id: str | None


def defer_job(session: AsyncSession, function: str, *args: Any, job_id: str | None = None) -> None:
    session.info.setdefault(_DEFERRED, []).append(DeferredJob(function, args, job_id))


async def enqueue_jobs(queue: ArqRedis, jobs: list[DeferredJob]) -> int:
    """Queue `jobs` to run now, in one round trip, as arq's `enqueue_job` would one by one
    (a job id already known to arq is skipped). How many were queued."""
    now = timestamp_ms()
    keys: list[str] = []
    argv: list[Any] = [default_queue_name, now, queue.expires_extra_ms]
    for job in jobs:
        job_id = job.job_id or uuid4().hex
        keys += [job_key_prefix + job_id, result_key_prefix + job_id]
        payload = serialize_job(
            job.function, job.args, {}, None, now, serializer=queue.job_serializer
        )
        argv += [job_id, payload]
    # EVALSHA, loading the script the first time a Redis server lacks it.
    queued: int = await queue.register_script(_ENQUEUE)(keys=keys, args=argv)
    return queued


async def enqueue_deferred_jobs(queue: ArqRedis | None, session: AsyncSession) -> None:
    jobs: list[DeferredJob] = session.info.pop(_DEFERRED, [])
    if queue is None or not jobs:
        return
    try:
        async with asyncio.timeout(ENQUEUE_TIMEOUT_SECONDS):
            await enqueue_jobs(queue, jobs)
    except Exception as exc:  # the sweep finds the work again; a request must not fail for this
        logger.warning("could not enqueue %d job(s), the sweep will retry: %r", len(jobs), exc)
