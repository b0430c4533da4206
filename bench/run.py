"""`make bench`: start a production-style stack, seed it, load it, check it, print the table.

    .venv/bin/python bench/run.py                       # the full run (~4 minutes)
    BENCH_SECONDS=3 .venv/bin/python bench/run.py       # a quick smoke run
    .venv/bin/python bench/run.py --scenarios books --concurrency 64 --seconds 30

Exits 1 when an invariant fails (the targets are reported, not enforced).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path

import loadgen
import profiling
import psutil
import report
import seed
import stack

DEFAULT_OUTPUT = stack.RESULTS / "latest.md"
PROFILES = stack.RESULTS / "profiles"
LOGIN_PARALLELISM = 16


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=float(env("BENCH_SECONDS", "15")),
        help="measured window of each cell (env BENCH_SECONDS, default 15)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=float(env("BENCH_WARMUP", "1")),
        help="unmeasured warm-up before each window (env BENCH_WARMUP, default 1)",
    )
    parser.add_argument(
        "--concurrency",
        type=_ints,
        default=_ints(env("BENCH_CONCURRENCY", "1,16,64")),
        help="virtual users per cell, comma-separated (env BENCH_CONCURRENCY, default 1,16,64)",
    )
    parser.add_argument(
        "--scenarios",
        type=_scenarios,
        default=_scenarios(env("BENCH_SCENARIOS", ",".join(loadgen.SCENARIOS))),
        help="comma-separated subset of books,borrowings,cycle,token (env BENCH_SCENARIOS)",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="markdown results")
    parser.add_argument(
        "--profile",
        action="store_true",
        default=env("BENCH_PROFILE", "") not in ("", "0"),
        help=f"sample each API worker and the worker with py-spy in every cell, into "
        f"{PROFILES} (env BENCH_PROFILE=1)",
    )
    return parser.parse_args(argv)


def _ints(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("expected positive integers, e.g. 1,16,64")
    return values


def _scenarios(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = set(names) - set(loadgen.SCENARIOS)
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"scenarios are {', '.join(loadgen.SCENARIOS)}")
    return names


class Progress:
    def __init__(self) -> None:
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def __call__(self, message: str) -> None:
        print(f"[{self.elapsed:6.1f}s] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    say = Progress()
    load_at_start = os.getloadavg()[0]
    with ExitStack() as services:
        say("database: fresh, migrated library_bench ...")
        database = stack.start_database()
        size = seed.SeedSize()
        say(f"seeding {size.books} books, {size.members} members, {size.history} past loans ...")
        seeded = asyncio.run(seed.seed(database.url, size))
        redis = stack.start_redis(services)
        api_port, sandbox_port = stack.free_port(), stack.free_port()
        telegram_port, smtp_port = stack.free_port(), stack.free_port()
        environment = stack.service_environment(
            database_url=database.url,
            redis_url=redis.url,
            api_port=api_port,
            sandbox_port=sandbox_port,
            telegram_port=telegram_port,
            smtp_port=smtp_port,
        )
        say(f"starting the sandbox Stripe (:{sandbox_port}), API (:{api_port}), worker ...")
        sandbox = stack.start_sandbox(services, sandbox_port, api_port, environment)
        sinks = stack.start_sinks(services, telegram_port, smtp_port, environment)
        # Stopped in reverse: the API first, then the worker, the sinks, the sandbox, Redis.
        worker = stack.start_worker(services, environment)
        api = stack.start_service(
            services,
            "api",
            [
                str(stack.BIN / "library-service"),
                "run",
                "--host=127.0.0.1",
                f"--port={api_port}",
                f"--workers={stack.API_WORKERS}",
                "--no-worker",
            ],
            environment,
        )
        stack.wait_http(sandbox, f"http://127.0.0.1:{sandbox_port}/", any_status=True)
        stack.wait_http(sinks, f"http://127.0.0.1:{telegram_port}/", any_status=True)
        stack.wait_http(api, f"http://127.0.0.1:{api_port}/ready")
        trees = [
            stack.ProcessTree("API", api.pid),
            stack.ProcessTree("sandbox", sandbox.pid),
            stack.ProcessTree("sinks", sinks.pid),
            stack.ProcessTree("worker", worker.pid),
        ]
        if database.server_pid is not None:
            trees.append(stack.ProcessTree("PostgreSQL", database.server_pid))
        if redis.server_pid is not None:
            trees.append(stack.ProcessTree("Redis", redis.server_pid))
        api_workers = stack.api_workers(api)
        sampler = stack.Sampler(api_workers, trees, api_port).start()
        profiles: dict[str, dict[str, list[Path]]] = {}
        services.callback(sampler.stop)

        rows: list[report.Row] = []
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            say(f"logging {size.members} members in (bcrypt cost {seed.BCRYPT_ROUNDS}) ...")
            login_started = time.monotonic()
            tokens = pool.submit(
                loadgen.obtain_tokens, api_port, seeded.emails, seed.PASSWORD, LOGIN_PARALLELISM
            ).result()
            login_seconds = time.monotonic() - login_started
            members = tuple(
                loadgen.Member(email, token)
                for email, token in zip(seeded.emails, tokens, strict=True)
            )
            first_member = 0  # each cycle cell gets members no other cycle cell used
            for scenario in args.scenarios:
                for concurrency in args.concurrency:
                    spec = loadgen.CellSpec(
                        scenario=scenario,
                        concurrency=concurrency,
                        seconds=args.seconds,
                        warmup=args.warmup,
                        api_port=api_port,
                        sandbox_port=sandbox_port,
                        password=seed.PASSWORD,
                        members=members,
                        book_ids=seeded.book_ids,
                        first_member=first_member,
                    )
                    if scenario == "cycle":
                        first_member += concurrency
                    sessions = asyncio.run(seed.sessions_opened(database.url))
                    delivered = asyncio.run(seed.messages_delivered(database.url))
                    cell = f"{scenario} c={concurrency}"
                    recordings = (
                        _start_profiles(cell, api_workers, worker.pid) if args.profile else []
                    )
                    sampler.begin_window()
                    result = pool.submit(loadgen.run_cell, spec).result()
                    usage = sampler.end_window()
                    for recording in recordings:
                        recording.stop()
                    if recordings:
                        profiles[cell] = _by_process(recordings)
                    sessions = max(
                        0, asyncio.run(seed.sessions_opened(database.url)) - sessions - 1
                    )
                    delivered = asyncio.run(seed.messages_delivered(database.url)) - delivered
                    rows.append(report.Row(result, usage, sessions, delivered))
                    say(
                        f"{scenario:<10} c={concurrency:<3} {result.rps:8,.0f} req/s  "
                        f"p50 {result.latency.p50_ms:7.1f} ms  p99 {result.latency.p99_ms:7.1f} ms"
                        f"  errors {result.errors}"
                    )

        say("checking invariants ...")
        results = [row.result for row in rows]
        checks = asyncio.run(
            seed.check_invariants(
                database.url,
                seeded,
                borrowed=sum(result.borrowed for result in results),
                returned=sum(result.returned for result in results),
                server_errors=sum(result.server_errors for result in results),
            )
        )
        alive = [
            service.name
            for service in (api, worker, sandbox, sinks)
            if service.process.poll() is None
        ]
        checks.append(
            seed.Check(
                "the API, the worker, the sandbox and the sinks ran to the end",
                len(alive) == 4,
                f"running: {', '.join(alive) or 'none'}",
            )
        )
        notifications = asyncio.run(seed.notification_counts(database.url))
        header = _header(args, database, login_seconds, load_at_start)
        notes = _notes(args, notifications)
        markdown = report.render(
            rows,
            peak_rss_mb=dict(sampler.peak_mb),
            checks=checks,
            header=header,
            notes=notes,
            profiles=profiling.render(profiles, PROFILES) if profiles else (),
        )
        say("stopping the stack ...")
    print()
    print(markdown)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(markdown)
    say(f"written to {args.output}; logs in {stack.LOGS}")
    return 0 if all(check.passed for check in checks) else 1


def _start_profiles(
    cell: str, api_workers: list[psutil.Process], worker_pid: int
) -> list[profiling.Recording]:
    name = cell.replace(" c=", "-c")
    recordings = [
        profiling.record(process.pid, "API", PROFILES / f"{name}-api-{n}.txt")
        for n, process in enumerate(api_workers, 1)
    ]
    recordings.append(profiling.record(worker_pid, "worker", PROFILES / f"{name}-worker.txt"))
    time.sleep(0.5)  # py-spy attaches before the warm-up ends
    return recordings


def _by_process(recordings: list[profiling.Recording]) -> dict[str, list[Path]]:
    """Both API workers' samples count as one API's."""
    paths: dict[str, list[Path]] = {}
    for recording in recordings:
        paths.setdefault(recording.name, []).append(recording.path)
    return paths


def _header(
    args: argparse.Namespace, database: stack.Database, login_seconds: float, load_at_start: float
) -> list[str]:
    return [
        f"- when: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {_commit()}",
        f"- machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"1-min load average {load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end",
        f"- stack: `library-service run --workers {stack.API_WORKERS} --no-worker` "
        "(ENVIRONMENT=production, uvloop + httptools, JSON access log), `library-service worker`, "
        f"PostgreSQL {'from DATABASE_URL' if database.server_pid is None else 'embedded'}, "
        f"Redis {'from REDIS_URL' if os.environ.get('REDIS_URL') else 'embedded'}, sandbox Stripe, "
        "all on loopback",
        f"- data: 1,000 books x {seed.COPIES_PER_BOOK} copies, 200 members, 20,000 past paid "
        f"loans; {args.warmup:g} s warm-up + {args.seconds:g} s measured per cell; "
        f"200 logins up front took {login_seconds:.1f} s",
    ]


def _notes(args: argparse.Namespace, notifications: dict[str, int]) -> list[str]:
    sent = ", ".join(f"{status} {n}" for status, n in sorted(notifications.items())) or "none"
    return [
        "Latencies are plain measured percentiles (write of the request to the last byte of "
        "the answer) from a closed-loop client: NOT corrected for coordinated omission.",
        f"Each cell: {args.warmup:g} s warm-up, then {args.seconds:g} s in which every answer "
        "is counted; a cycle under way at the end is finished unmeasured.",
        "errors = answers outside 2xx/3xx plus exceptions (timeouts, resets); see Errors.",
        "The cycle counts all four requests: POST /api/borrowings/, POST <session_url>/pay "
        "(sandbox, 303; it also posts the signed webhook to the API), GET the redirect "
        "(/api/payments/success/), POST /api/borrowings/{id}/return/.",
        "CPU %: 100 = one core; API = both workers and their supervisor; measured over the "
        "whole cell (warm-up and drain included); 'rest of the box' is everything not ours "
        "(e.g. someone's test suite) and makes the numbers noisy when it is not near 0. "
        "PG sessions opened: PostgreSQL's own count, a sign of connection-pool churn.",
        "API RSS: sampled every 0.2 s per uvicorn worker; the table shows each worker's peak "
        "in the cell. Connections per worker: the most TCP connections seen at once, sampled "
        "every second (the sandbox's keep-alive webhook connections included).",
        f"Staff notifications in the outbox after the run: {sent}.",
    ]


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=stack.ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=stack.ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty else "")


if __name__ == "__main__":
    sys.exit(main())
