"""What one statement costs the API in CPU, layer by layer (`make bench-statements`).

    .venv/bin/python bench/statements.py             # 3,000 of each
    .venv/bin/python bench/statements.py -n 10000

A one-row SELECT with one bind parameter, run one after another on one connection to the
PostgreSQL of BENCH_POSTGRES_URL (default: the server on 127.0.0.1:5432, user postgres), on
uvloop as the API runs, and the CPU time of this process divided by the count: what the
client side of a round trip costs through each layer the service can use. PostgreSQL's own
CPU is not in these figures. Compare rows within one run: the machine's speed varies.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Awaitable, Callable

import asyncpg
import uvloop
from sqlalchemy import Integer, bindparam, literal_column, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
SQL = "SELECT 1 AS x WHERE $1::int > -1"
# The same statement as the service writes its hot ones: built once, with a bind parameter.
STATEMENT = select(literal_column("1").label("x")).where(bindparam("i", type_=Integer) > -1)


async def cpu_per_call(count: int, call: Callable[[int], Awaitable[object]]) -> float:
    """µs of this process's CPU per `call`, after a warm-up."""
    for i in range(50):
        await call(i)
    started = time.process_time()
    for i in range(count):
        await call(i)
    return (time.process_time() - started) / count * 1e6


async def main(url: str, count: int) -> list[tuple[str, float]]:
    engine = create_async_engine(url, pool_size=2)
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    driver_url = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    raw = await asyncpg.connect(driver_url)
    rows: list[tuple[str, float]] = []

    async def plain(i: int) -> object:
        return await raw.fetchrow(SQL, i)

    async def in_transaction(i: int) -> object:
        async with raw.transaction():
            return await raw.fetchrow(SQL, i)

    rows.append(("asyncpg: a statement", await cpu_per_call(count, plain)))
    rows.append(("asyncpg: BEGIN, a statement, COMMIT", await cpu_per_call(count, in_transaction)))

    async with autocommit.connect() as connection:

        async def core(i: int) -> object:
            return (await connection.execute(STATEMENT, {"i": i})).first()

        rows.append(
            ("SQLAlchemy Core on a connection: a statement", await cpu_per_call(count, core))
        )

    async def checkout_and_core(i: int) -> object:
        async with autocommit.connect() as connection:
            return (await connection.execute(STATEMENT, {"i": i})).first()

    rows.append(
        (
            "SQLAlchemy: a connection from the pool, a statement",
            await cpu_per_call(count, checkout_and_core),
        )
    )

    autocommit_sessions = async_sessionmaker(autocommit, expire_on_commit=False)

    async def autocommit_session(i: int) -> object:
        async with autocommit_sessions() as session:
            return (await session.execute(STATEMENT, {"i": i})).first()

    rows.append(
        (
            "SQLAlchemy session without a transaction: a statement",
            await cpu_per_call(count, autocommit_session),
        )
    )

    async def session_statement(i: int) -> object:
        async with sessions() as session:
            result = (await session.execute(STATEMENT, {"i": i})).first()
            await session.commit()
            return result

    async def session_five(i: int) -> object:
        async with sessions() as session:
            for _ in range(5):
                (await session.execute(STATEMENT, {"i": i})).first()
            await session.commit()
            return None

    one = await cpu_per_call(count, session_statement)
    five = await cpu_per_call(count // 5, session_five)
    rows.append(("SQLAlchemy session: BEGIN, a statement, COMMIT", one))
    rows.append(("SQLAlchemy session: each statement more in a transaction", (five - one) / 4))
    await raw.close()
    await engine.dispose()
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=3000, help="statements of each kind")
    args = parser.parse_args()
    url = os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
    measured = uvloop.run(main(url, args.count))
    print("| through | CPU µs per statement |")
    print("|---|---:|")
    for label, micros in measured:
        print(f"| {label} | {micros:,.0f} |")
