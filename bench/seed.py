"""Bench data straight into PostgreSQL (COPY through asyncpg), and the checks afterwards."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from passlib.context import CryptContext
from sqlalchemy.engine import make_url

PASSWORD = "bench-password-123"
BCRYPT_ROUNDS = 12  # the production default: the token cell measures exactly this cost
COPIES_PER_BOOK = 50


@dataclass(frozen=True, slots=True)
class SeedSize:
    books: int = 1_000
    members: int = 200
    history: int = 20_000  # past, returned and paid borrowings


@dataclass(frozen=True, slots=True)
class Seeded:
    book_ids: tuple[int, ...]
    copies: dict[int, int]  # book id -> copies it owns (inventory + active borrowings)
    emails: tuple[str, ...]
    last_borrowing_id: int  # borrowings after this one were made by the load


async def connect(url: str) -> Any:
    """An asyncpg connection from a SQLAlchemy URL (unix socket `?host=` included)."""
    parsed = make_url(url)
    port = parsed.query.get("port") or parsed.port or 5432
    return await asyncpg.connect(
        user=parsed.username,
        password=parsed.password,
        host=parsed.query.get("host") or parsed.host,
        port=int(str(port)),
        database=parsed.database,
    )


def member_email(number: int) -> str:
    return f"member{number:03d}@bench.library.example.com"


async def seed(url: str, size: SeedSize) -> Seeded:
    rng = random.Random(20261125)
    hashed = CryptContext(schemes=["bcrypt"], bcrypt__rounds=BCRYPT_ROUNDS).hash(PASSWORD)
    today = datetime.now(UTC).date()

    books = [
        (
            number,
            f"Bench volume {number}: {rng.choice(TITLE_WORDS)} {rng.choice(TITLE_WORDS)}",
            f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
            rng.choice(("HARD", "SOFT")),
            COPIES_PER_BOOK,
            Decimal(rng.randrange(50, 301)) / 100,  # 0.50 .. 3.00
            rng.randrange(1900, 2026),
        )
        for number in range(1, size.books + 1)
    ]
    members = [
        (number, member_email(number), hashed, "Bench", f"Member {number}")
        for number in range(1, size.members + 1)
    ]
    borrowings: list[tuple[int, date, date, date, int, int]] = []
    for number in range(1, size.history + 1):
        borrowed = today - timedelta(days=rng.randrange(30, 3 * 365))
        expected = borrowed + timedelta(days=rng.randrange(1, 31))
        returned = borrowed + timedelta(days=rng.randrange(0, (expected - borrowed).days + 1))
        user_id = (number - 1) % size.members + 1
        borrowings.append(
            (number, borrowed, expected, returned, rng.randrange(size.books) + 1, user_id)
        )

    connection = await connect(url)
    try:
        async with connection.transaction():
            await connection.copy_records_to_table(
                "books",
                records=books,
                columns=["id", "title", "author", "cover", "inventory", "daily_fee", "year"],
            )
            await connection.copy_records_to_table(
                "users",
                records=members,
                columns=["id", "email", "hashed_password", "first_name", "last_name"],
            )
            await connection.copy_records_to_table(
                "borrowings",
                records=borrowings,
                columns=[
                    "id",
                    "borrow_date",
                    "expected_return_date",
                    "actual_return_date",
                    "book_id",
                    "user_id",
                ],
            )
            # One PAID fee per past borrowing: days * daily_fee, at least Stripe's 0.50.
            await connection.execute(
                """
                INSERT INTO payments (status, type, borrowing_id, session_id, money_to_pay,
                                      created_at, paid_at)
                SELECT 'PAID', 'PAYMENT', b.id, 'cs_bench_history_' || b.id,
                       greatest(0.50, (b.expected_return_date - b.borrow_date) * k.daily_fee),
                       b.borrow_date::timestamptz, b.borrow_date::timestamptz
                FROM borrowings b JOIN books k ON k.id = b.book_id
                ORDER BY b.id
                """
            )
            for table in ("books", "users", "borrowings", "payments"):
                await connection.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT max(id) FROM {table}))"
                )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return Seeded(
        book_ids=tuple(book[0] for book in books),
        copies={book[0]: COPIES_PER_BOOK for book in books},
        emails=tuple(member[1] for member in members),
        last_borrowing_id=size.history,
    )


# -- after the run -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    passed: bool
    detail: str


async def check_invariants(
    url: str, seeded: Seeded, *, borrowed: int, returned: int, server_errors: int
) -> list[Check]:
    connection = await connect(url)
    try:
        books = await connection.fetch(
            """
            SELECT k.id, k.inventory, count(b.id) AS active
            FROM books k
            LEFT JOIN borrowings b ON b.book_id = k.id AND b.actual_return_date IS NULL
            GROUP BY k.id
            """
        )
        orphans = await connection.fetchval(
            "SELECT count(*) FROM payments p "
            "LEFT JOIN borrowings b ON b.id = p.borrowing_id WHERE b.id IS NULL"
        )
        fee_counts = await connection.fetch(
            """
            SELECT b.id, count(p.id) FILTER (WHERE p.type = 'PAYMENT') AS fees
            FROM borrowings b LEFT JOIN payments p ON p.borrowing_id = b.id
            WHERE b.id > $1
            GROUP BY b.id
            HAVING count(p.id) FILTER (WHERE p.type = 'PAYMENT') <> 1
            """,
            seeded.last_borrowing_id,
        )
        load = await connection.fetchrow(
            """
            SELECT count(*) AS made,
                   count(*) FILTER (WHERE b.actual_return_date IS NULL) AS active,
                   count(*) FILTER (WHERE p.status = 'PAID') AS paid,
                   count(*) FILTER (WHERE p.status <> 'PAID') AS unpaid
            FROM borrowings b
            LEFT JOIN payments p ON p.borrowing_id = b.id AND p.type = 'PAYMENT'
            WHERE b.id > $1
            """,
            seeded.last_borrowing_id,
        )
        fines = await connection.fetchval("SELECT count(*) FROM payments WHERE type = 'FINE'")
    finally:
        await connection.close()

    wrong = [
        f"book {row['id']}: {row['inventory']} + {row['active']} != {seeded.copies[row['id']]}"
        for row in books
        if row["inventory"] + row["active"] != seeded.copies[row["id"]]
    ]
    return [
        Check(
            "inventory + active borrowings = copies, for every book",
            not wrong and len(books) == len(seeded.copies),
            f"{len(books)} books, {len(wrong)} wrong"
            + (f" ({'; '.join(wrong[:5])})" if wrong else ""),
        ),
        Check("every payment belongs to a borrowing", orphans == 0, f"{orphans} orphan payments"),
        Check(
            "every borrowing from the load has exactly one PAYMENT",
            not fee_counts,
            f"{len(fee_counts)} borrowings without exactly one"
            + (f" (ids {[row['id'] for row in fee_counts[:5]]})" if fee_counts else ""),
        ),
        Check(
            "every 201 borrowing is in the database, returned and paid",
            load["made"] == borrowed
            and load["active"] == 0
            and load["paid"] == borrowed
            and returned == borrowed,
            f"client saw {borrowed} created / {returned} returned; database has "
            f"{load['made']} made, {load['active']} active, {load['paid']} paid, "
            f"{load['unpaid']} not paid; {fines} fines",
        ),
        Check("no 5xx answer seen", server_errors == 0, f"{server_errors} 5xx answers"),
    ]


async def sessions_opened(url: str) -> int:
    """Connections ever opened to the database (PostgreSQL's own count, flushed lazily)."""
    connection = await connect(url)
    try:
        value = await connection.fetchval(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        )
    finally:
        await connection.close()
    return int(value or 0)


async def messages_delivered(url: str) -> int:
    """Staff messages and member notices the worker has dealt with (sent, or failed)."""
    connection = await connect(url)
    try:
        value = await connection.fetchval(
            "SELECT (SELECT count(*) FROM notifications WHERE status <> 'PENDING')"
            " + (SELECT count(*) FROM member_notices WHERE status IN ('SENT', 'FAILED'))"
        )
    finally:
        await connection.close()
    return int(value or 0)


async def notification_counts(url: str) -> dict[str, int]:
    connection = await connect(url)
    try:
        rows = await connection.fetch("SELECT status, count(*) AS n FROM notifications GROUP BY 1")
    finally:
        await connection.close()
    return {row["status"]: row["n"] for row in rows}


TITLE_WORDS = (
    "Silent", "River", "Garden", "Winter", "Empire", "Letters", "Shadow", "Harbor", "Glass",
    "Orchard", "Atlas", "Mirror", "Lantern", "Northern", "Paper", "Storm", "Quiet", "Iron",
)  # fmt: skip
FIRST_NAMES = ("Ada", "Boris", "Clara", "Dmytro", "Elena", "Farid", "Greta", "Hiro", "Iris")
LAST_NAMES = ("Adams", "Bondar", "Chen", "Dubois", "Eriksen", "Fischer", "Garcia", "Ito")
