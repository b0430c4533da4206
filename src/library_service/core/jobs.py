"""Jobs deferred by a transaction and queued only once it has committed.

A job enqueued before the commit could run before its data exists, or for data that was
rolled back. Losing the enqueue (Redis down) is harmless: every job has a database-backed
sweep that finds the work again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from arq.connections import ArqRedis
    from sqlalchemy.ext.asyncio import AsyncSession

logger = logging.getLogger(__name__)

_DEFERRED = "deferred_jobs"
ENQUEUE_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class DeferredJob:
    function: str
    args: tuple[Any, ...]
    job_id: str | None


def defer_job(session: AsyncSession, function: str, *args: Any, job_id: str | None = None) -> None:
    session.info.setdefault(_DEFERRED, []).append(DeferredJob(function, args, job_id))


async def enqueue_deferred_jobs(queue: ArqRedis | None, session: AsyncSession) -> None:
    jobs: list[DeferredJob] = session.info.pop(_DEFERRED, [])
    if queue is None or not jobs:
        return
    try:
        async with asyncio.timeout(ENQUEUE_TIMEOUT_SECONDS):
            for job in jobs:
                await queue.enqueue_job(job.function, *job.args, _job_id=job.job_id)
    except Exception as exc:  # the sweep finds the work again; a request must not fail for this
        logger.warning("could not enqueue %d job(s), the sweep will retry: %r", len(jobs), exc)
