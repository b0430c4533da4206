"""Keeps the arq worker running through Redis outages, and lets others see that it runs.

arq's Worker stops for good at the first Redis error: its poll loop raises and nothing
restarts it. The supervisor keeps the worker's resources (database pool, HTTP clients) and
runs one arq Worker at a time on them. When Redis fails, the jobs in flight finish (they
need only PostgreSQL and Telegram or Stripe), the connection is dropped, and a new Worker
is built once Redis answers again, trying with back-off meanwhile. The outage is logged
when it starts and when it ends, not at every attempt.

Each Worker records a heartbeat in Redis on every poll of the queue (throttled to
WORKER_HEARTBEAT_SECONDS): /ready?worker=true and `library-service worker --check` read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from arq.connections import ArqRedis
from arq.worker import Worker

from library_service.core.config import Settings
from library_service.core.outages import REDIS_UNAVAILABLE, Outage, backoff
from library_service.core.queue import (
    connect_queue,
    forget_heartbeat,
    record_heartbeat,
    worker_name,
)
from library_service.worker import (
    JOB_COMPLETION_WAIT_SECONDS,
    shutdown,
    startup,
    worker_options,
)

logger = logging.getLogger(__name__)

# How long a stopping worker's main task may outlive its cancellation before it is sent again.
CANCEL_AGAIN_SECONDS = 1.0
# arq keeps a started job's in-progress mark for the longest job timeout plus this: a dead
# worker's job runs again that long after it started.
ARQ_JOB_GRACE_SECONDS = 10


class HeartbeatWorker(Worker):
    """arq's Worker, beating where /ready and `worker --check` look for it."""

    def __init__(
        self, *, heartbeat_name: str, redis_outage: Outage, job_grace: float, **options: Any
    ) -> None:
        super().__init__(**options)
        self.in_progress_timeout_s += job_grace - ARQ_JOB_GRACE_SECONDS
        self.heartbeat_name = heartbeat_name
        self.redis_outage = redis_outage
        self.beats = 0
        self._next_beat = 0.0

    async def record_health(self) -> None:
        # arq calls this after every poll of the queue and its crons: a beat shows both run.
        now = self.loop.time()
        if now < self._next_beat:
            return
        self._next_beat = now + self.health_check_interval
        await record_heartbeat(self.pool, self.heartbeat_name)
        self.beats += 1
        self.redis_outage.up()


class WorkerSupervisor:
    """Runs arq Workers one after another until `stop()`; see the module's docstring."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.name = worker_name()
        self.redis_outage = Outage("Redis")
        self.ctx: dict[str, Any] = {"settings": settings}
        self._stopping = asyncio.Event()
        self._worker: HeartbeatWorker | None = None

    async def run(self) -> None:
        """Take jobs and run the crons until `stop()`; a Redis outage only pauses them.

        Errors other than an unreachable Redis end `run()`: whoever started the worker
        restarts it (the container's restart policy, or `library-service run`).
        """
        await startup(self.ctx)
        try:
            delays = backoff(self.settings.WORKER_RETRY_MAX_SECONDS)
            while not self._stopping.is_set():
                if await self._run_worker():
                    delays = backoff(self.settings.WORKER_RETRY_MAX_SECONDS)
                await self._pause(next(delays))
        finally:
            await shutdown(self.ctx)

    def stop(self) -> None:
        """Stop taking jobs and let those in flight finish (up to 30 s); a second call
        cancels them at once."""
        if self._worker is not None:
            if self._stopping.is_set():
                self._worker.handle_sig(signal.SIGINT)
            else:
                self._worker.handle_sig_wait_for_completion(signal.SIGTERM)
        self._stopping.set()

    async def _run_worker(self) -> bool:
        """One arq Worker, from connecting to Redis until it stops; True if it ever beat."""
        queue = await self._connect()
        if queue is None:
            return False
        # Built afresh each time: new cron jobs schedule from now, not from before an outage.
        worker = HeartbeatWorker(
            **worker_options(self.settings),
            ctx=self.ctx,
            redis_pool=queue,
            handle_signals=False,
            health_check_interval=self.settings.WORKER_HEARTBEAT_SECONDS,
            heartbeat_name=self.name,
            redis_outage=self.redis_outage,
            job_grace=self.settings.WORKER_JOB_GRACE_SECONDS,
        )
        stopped = asyncio.Event()
        worker.on_stop = lambda _signum: stopped.set()  # arq: after cancelling its main task
        worker.main_task = main_task = asyncio.ensure_future(worker.main())
        self._worker = worker
        try:
            await self._until_ended(main_task, stopped)
        finally:
            self._worker = None
            await self._wind_down(worker, queue)
        self._raise_unless_outage(main_task)
        return worker.beats > 0

    async def _until_ended(self, main_task: asyncio.Task[None], stopped: asyncio.Event) -> None:
        """Until arq's main task ends. On a stop, arq cancels it once the jobs in flight are
        done; should that cancellation be lost on its way (a worker once stayed up after
        arq's "wait complete", taking no job, until a second signal), it is sent again."""
        waiting = asyncio.ensure_future(stopped.wait())
        try:
            await asyncio.wait([main_task, waiting], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
        while not main_task.done():
            await asyncio.wait([main_task], timeout=CANCEL_AGAIN_SECONDS)
            if not main_task.done():
                logger.warning("The worker did not stop when cancelled: cancelling it again")
                main_task.cancel()

    async def _connect(self) -> ArqRedis | None:
        """A connection to Redis, unless it is down (or the worker is stopping)."""
        queue = connect_queue(self.settings.REDIS_URL)
        try:
            await queue.ping()  # before arq, which would log its start at every attempt
            if not self._stopping.is_set():
                return queue
        except REDIS_UNAVAILABLE as exc:
            self.redis_outage.down(exc)
        with contextlib.suppress(*REDIS_UNAVAILABLE):
            await queue.aclose()
        return None

    def _raise_unless_outage(self, main_task: asyncio.Task[None]) -> None:
        if main_task.cancelled() or (error := main_task.exception()) is None:
            return
        if isinstance(error, REDIS_UNAVAILABLE):
            self.redis_outage.down(error)
        elif not self._stopping.is_set():
            raise error

    async def _wind_down(self, worker: HeartbeatWorker, queue: ArqRedis) -> None:
        """Let the jobs in flight finish (their results may not reach Redis: a job that runs
        twice is harmless), then drop the connection."""
        if tasks := list(worker.tasks.values()):
            _, late = await asyncio.wait(tasks, timeout=JOB_COMPLETION_WAIT_SECONDS)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(*REDIS_UNAVAILABLE):
            if self._stopping.is_set():
                await forget_heartbeat(queue, self.name)
        with contextlib.suppress(*REDIS_UNAVAILABLE):
            await queue.aclose()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


async def run_worker(settings: Settings) -> None:
    """`library-service worker`: the supervised worker, stopped gracefully by SIGTERM,
    SIGINT or SIGHUP (a second signal cancels the jobs still running)."""
    supervisor = WorkerSupervisor(settings)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(signum, supervisor.stop)
    await supervisor.run()
