"""The worker's CPU per staff message and per member notice, alone (`make bench-worker`).

    .venv/bin/python bench/worker.py                 # 3 rounds of 2,000 of each
    .venv/bin/python bench/worker.py --messages 5000 --rounds 4 --only notices

`make bench` measures the worker beside the API, the load generator and the sandbox, where
the box's two cores are shared and a cell's count is a few thousand messages. This starts
only what a delivery needs: a fresh `library_bench` database (DATABASE_URL's server or the
embedded one), Redis (REDIS_URL or embedded), `bench/sinks_server.py` as Telegram and the
SMTP server, and the worker (`library-service worker`, production settings). Each round
writes `--messages` staff messages (or member notices: a payment's receipt, with its facts
and a link), queues their jobs as the API does after a commit (`core.jobs.enqueue_jobs`, a
thousand per round trip) and waits until every one is SENT; the worker's CPU time over the
round, divided by the count, is the figure. Compare runs within one session: the
machine's speed varies.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack
from seed import connect

from library_service.core.jobs import DeferredJob, enqueue_jobs
from library_service.core.queue import connect_queue
from library_service.notifications import jobs

# A staff message of the usual length (a new loan), and a member's receipt.
TEXT = "New borrowing #{n}\nMember: member{n}@bench.example.com\nBook: Some Title, by Someone"
KINDS = {
    "messages": (
        jobs.DELIVER,
        jobs.delivery_job_id,
        """
        INSERT INTO notifications (kind, text)
        SELECT 'borrowing_created', replace($2, '{n}', g::text) FROM generate_series(1, $1) g
        RETURNING id
        """,
        "SELECT count(*) FROM notifications WHERE status = 'PENDING'",
    ),
    "notices": (
        jobs.DELIVER_NOTICE,
        jobs.notice_job_id,
        """
        INSERT INTO member_notices
            (user_id, kind, subject, body, facts, link_path, link_label, to_address)
        SELECT g, 'payment_received', 'Payment received', replace($2, '{n}', g::text),
            '[["Amount", "3.50 USD"], ["Book", "Some Title"]]'::jsonb,
            '/api/borrowings/' || g || '/', 'See the loan', 'member' || g || '@bench.example.com'
        FROM generate_series(1, $1) g
        RETURNING id
        """,
        "SELECT count(*) FROM member_notices WHERE status = 'PENDING'",
    ),
}


async def rounds(database_url: str, redis_url: str, worker: stack.ProcessTree, args) -> None:
    connection = await connect(database_url)
    queue = connect_queue(redis_url)
    kinds = list(KINDS) if args.only is None else [args.only]
    try:
        for round_number in range(1, args.rounds + 1):
            for kind in kinds:
                function, job_id, write, pending = KINDS[kind]
                ids = [row[0] for row in await connection.fetch(write, args.messages, TEXT)]
                started, cpu_started = time.monotonic(), worker.cpu_seconds()
                for first in range(0, len(ids), 1000):
                    batch = ids[first : first + 1000]
                    await enqueue_jobs(
                        queue, [DeferredJob(function, (i,), job_id(i)) for i in batch]
                    )
                while True:  # until the worker has sent them all
                    if not await connection.fetchval(pending):
                        break
                    await asyncio.sleep(0.05)
                seconds = time.monotonic() - started
                cpu_ms = (worker.cpu_seconds() - cpu_started) * 1000 / args.messages
                print(
                    f"round {round_number}: {args.messages} {kind} sent in {seconds:.1f} s "
                    f"({args.messages / seconds:,.0f}/s), worker CPU {cpu_ms:.3f} ms each",
                    flush=True,
                )
    finally:
        await queue.aclose()
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000, help="of each kind per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=list(KINDS), help="one kind only")
    args = parser.parse_args()
    with ExitStack() as services:
        database = stack.start_database()
        redis = stack.start_redis(services)
        telegram_port, smtp_port = stack.free_port(), stack.free_port()
        environment = stack.service_environment(
            database_url=database.url,
            redis_url=redis.url,
            api_port=stack.free_port(),  # no API runs: only the checkout links would use it
            sandbox_port=stack.free_port(),
            telegram_port=telegram_port,
            smtp_port=smtp_port,
        )
        sinks = stack.start_sinks(services, telegram_port, smtp_port, environment)
        worker = stack.start_worker(services, environment)
        stack.wait_http(sinks, f"http://127.0.0.1:{telegram_port}/", any_status=True)
        time.sleep(3)  # the worker's start-up (imports, connections) is not a delivery's cost
        worker.check_alive()
        asyncio.run(rounds(database.url, redis.url, stack.ProcessTree("worker", worker.pid), args))


if __name__ == "__main__":
    main()
