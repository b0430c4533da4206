# ruff: noqa: S608 - the SQL is built from this module's constants and sizes only
"""A whole library made inside PostgreSQL with generate_series, for `bench/run.py --large`.

The same statements make the small library (1,000 books) and the large one (200,000 books,
2,000,000 borrowings); only the sizes differ. Rows are derived from their number with
multiplications modulo the table sizes (coprime factors, so no pair repeats where a unique
index forbids it): the data are the same on every run, and no row leaves PostgreSQL.

Shape: books with real-looking ISBN-13s (check digit computed), titles and authors from word
lists, 1 % withdrawn; members with names (member 1 is staff); borrowings over six years, the
last `active` of them still out (a third of those overdue), each with its PAYMENT (PAID, or
PENDING with an open session, or EXPIRED), and a FINE for every 20th returned late; holds in
every state (some READY ones past their pickup day, for the expiry sweep); staff messages,
nearly all SENT; Idempotency-Keys, a tenth of them expired.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import seed

STAFF_ID = 1
STAFF_EMAIL = "staff@bench.library.example.com"


def staff_email() -> str:
    return STAFF_EMAIL


@dataclass(frozen=True, slots=True)
class LibrarySize:
    name: str
    books: int
    members: int
    borrowings: int
    active: int  # the last `active` borrowings are not returned
    holds: int
    messages: int
    idempotency_keys: int

    @property
    def first_active(self) -> int:
        return self.borrowings - self.active + 1


SMALL = LibrarySize("small", 1_000, 200, 5_000, 50, 250, 2_500, 500)
LARGE = LibrarySize("large", 200_000, 100_000, 2_000_000, 20_000, 100_000, 1_000_000, 50_000)

FIRST_NAMES = (
    "Ada", "Boris", "Clara", "Dmytro", "Elena", "Farid", "Greta", "Hiro", "Iris", "Jonas",
    "Kateryna", "Liam", "Maya", "Nikolai", "Olga", "Pablo", "Quinn", "Rosa", "Sven", "Tara",
    "Umar", "Vera", "Wendell", "Xenia", "Yusuf", "Zofia", "Amara", "Bruno", "Chloe", "Darius",
    "Esther", "Felix", "Gloria", "Hannah", "Ibrahim", "Julia", "Kenji", "Lucia", "Mateo", "Nora",
)  # fmt: skip
LAST_NAMES = (
    "Adams", "Bondar", "Chen", "Dubois", "Eriksen", "Fischer", "Garcia", "Ito", "Jensen",
    "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrenko", "Quispe", "Rossi",
    "Schmidt", "Tanaka", "Ueda", "Varga", "Wagner", "Xu", "Yilmaz", "Zielinski", "Almeida",
    "Brennan", "Castillo", "Dimitrov", "Esposito", "Fontaine", "Gallagher", "Horvath",
    "Ivanova", "Jovanovic", "Kaplan", "Lombardi", "Marchetti", "Novak", "Ostrowski",
    "Papadopoulos",
    "Ramirez", "Sokolov", "Takahashi", "Urquhart", "Vasquez", "Weber", "Yamamoto", "Zhang",
    "Moreno",
)  # fmt: skip
TITLE_WORDS = (
    "Silent", "River", "Garden", "Winter", "Empire", "Letters", "Shadow", "Harbor", "Glass",
    "Orchard", "Atlas", "Mirror", "Lantern", "Northern", "Paper", "Storm", "Quiet", "Iron",
    "Salt", "Summer", "Kingdom", "Bridge", "Forest", "Island", "Memory", "Ocean", "Signal",
    "Stone", "Thread", "Violet", "Wolves", "Ember", "Falcon", "Meridian", "Cathedral", "Desert",
    "Midnight", "Orbit", "Prairie", "Tide", "Voyage", "Willow", "Copper", "Harvest", "Velvet",
)  # fmt: skip


def _array(words: tuple[str, ...]) -> str:
    return "ARRAY[" + ", ".join(f"'{word}'" for word in words) + "]"


def _pick(words: tuple[str, ...], expression: str) -> str:
    """SQL for words[expression mod n] (expression is a non-negative bigint)."""
    return f"({_array(words)})[1 + (({expression}) % {len(words)})]"


def statements(size: LibrarySize, password_hash: str) -> list[tuple[str, str]]:
    """(what, SQL) in order; run on one connection with the foreign-key triggers off."""
    b, m, n, a = size.books, size.members, size.borrowings, size.first_active
    days = 6 * 365  # the ledger's span
    fine_every = 20
    return [
        (
            "books",
            f"""
            INSERT INTO books (id, title, author, cover, inventory, daily_fee, isbn, year,
                               withdrawn)
            SELECT g,
                   {_pick(TITLE_WORDS, "g::bigint * 7")} || ' ' || {_pick(TITLE_WORDS, "g / 7")}
                     || ' of the ' || {_pick(TITLE_WORDS, "g::bigint * 13 / 3")},
                   {_pick(FIRST_NAMES, "g::bigint * 11")} || ' '
                     || {_pick(LAST_NAMES, "g::bigint * 17 / 5")},
                   CASE WHEN g % 3 = 0 THEN 'HARD' ELSE 'SOFT' END,
                   CASE WHEN g % 10 = 0 THEN 0 ELSE 1 + g % 5 END,
                   (50 + (g::bigint * 37) % 251) / 100.0,
                   twelve || ((10 - (
                       SELECT sum(substr(twelve, i, 1)::int * CASE WHEN i % 2 = 1 THEN 1 ELSE 3 END)
                       FROM generate_series(1, 12) i) % 10) % 10)::text,
                   1900 + (g * 7) % 126,
                   g % 100 = 99
            FROM generate_series(1, {b}) g,
                 LATERAL (SELECT CASE WHEN g % 2 = 0 THEN '978' ELSE '979' END
                                 || lpad(((g::bigint * 4973) % 1000000000)::text, 9, '0')
                         ) AS isbn(twelve)
            """,
        ),
        (
            "members",
            f"""
            INSERT INTO users (id, email, hashed_password, first_name, last_name, is_staff,
                               date_joined)
            SELECT g,
                   CASE WHEN g = {STAFF_ID} THEN '{STAFF_EMAIL}'
                        ELSE lower(first) || '.' || lower(last) || '.' || g
                             || '@readers.example.org' END,
                   '{password_hash}', first, last, g = {STAFF_ID},
                   now() - ((g::bigint * 7919) % {days}) * interval '1 day'
            FROM generate_series(1, {m}) g,
                 LATERAL (SELECT {_pick(FIRST_NAMES, "g::bigint * 31")},
                                 {_pick(LAST_NAMES, "g::bigint * 17 / 3")}) AS name(first, last)
            """,
        ),
        (
            "borrowings",
            # Borrowing g is made on day (n - g) * days / n before today; the active ones
            # within the last five weeks, their due dates from 14 days ago to 3 weeks ahead.
            f"""
            INSERT INTO borrowings (id, borrow_date, expected_return_date, actual_return_date,
                                    book_id, user_id, created_at)
            SELECT g, borrowed, borrowed + loan_days,
                   CASE WHEN g >= {a} THEN NULL
                        WHEN g % {fine_every} = 0 THEN borrowed + loan_days + 1 + g % 9
                        ELSE borrowed + (g % loan_days) END,
                   1 + (g::bigint * 104729) % {b},
                   -- members 2..41 borrow nothing: the bench's writers start with a clean slate
                   42 + (g::bigint * 7919) % {m - 41},
                   borrowed::timestamptz
            FROM generate_series(1, {n}) g,
                 LATERAL (SELECT CASE WHEN g >= {a}
                                      THEN current_date - 35 + ((g - {a}) * 35) / {n - a + 1}
                                      ELSE current_date - 40
                                           - ((({n} - g) * {days}::bigint) / {n})::int
                                 END::date,
                                 CASE WHEN g >= {a} THEN 21 + (g % 15) ELSE 7 + g % 24 END
                         ) AS loan(borrowed, loan_days)
            """,
        ),
        (
            "payments",
            # The fee of every borrowing: PAID, except a quarter of the active ones (open
            # session) and an eighth (expired); then the fines of the late returns.
            f"""
            INSERT INTO payments (status, type, borrowing_id, session_id, session_url,
                                  session_expires_at, money_to_pay, created_at, paid_at)
            SELECT state, 'PAYMENT', g, 'cs_seed_fee_' || g,
                   'https://checkout.stripe.test/c/pay/cs_seed_fee_' || g,
                   CASE WHEN state = 'PENDING' THEN now() + ((g % 1440) * interval '1 minute')
                        ELSE b.created_at + interval '1 day' END,
                   greatest(0.50, (b.expected_return_date - b.borrow_date) * k.daily_fee),
                   b.created_at, CASE WHEN state = 'PAID' THEN b.created_at END
            FROM borrowings b JOIN books k ON k.id = b.book_id,
                 LATERAL (SELECT b.id AS g,
                                 CASE WHEN b.id >= {a} AND b.id % 4 = 0 THEN 'PENDING'
                                      WHEN b.id >= {a} AND b.id % 8 = 1 THEN 'EXPIRED'
                                      ELSE 'PAID' END AS state) AS s;
            INSERT INTO payments (status, type, borrowing_id, session_id, session_url,
                                  session_expires_at, money_to_pay, created_at, paid_at)
            SELECT CASE WHEN b.id % 400 = 0 THEN 'PENDING'
                        WHEN b.id % 400 = 20 THEN 'EXPIRED' ELSE 'PAID' END,
                   'FINE', b.id,
                   CASE WHEN b.id % 800 <> 0 THEN 'cs_seed_fine_' || b.id END,
                   CASE WHEN b.id % 800 <> 0
                        THEN 'https://checkout.stripe.test/c/pay/cs_seed_fine_' || b.id END,
                   b.actual_return_date::timestamptz + interval '1 day',
                   least(300, (b.actual_return_date - b.expected_return_date) * 2 * k.daily_fee),
                   b.actual_return_date::timestamptz,
                   CASE WHEN b.id % 400 NOT IN (0, 20) THEN b.actual_return_date::timestamptz END
            FROM borrowings b JOIN books k ON k.id = b.book_id
            WHERE b.actual_return_date > b.expected_return_date
            """,
        ),
        (
            "holds",
            # Hold h: member 42 + h*7919 mod (m - 41) (distinct for h < m - 41, so no
            # member holds a book twice), book h*31 mod b. Every state; READY ones partly
            # past their pickup day.
            f"""
            INSERT INTO holds (id, book_id, user_id, status, ready_until, created_at,
                               closed_at)
            SELECT h, 1 + (h::bigint * 31) % {b}, 42 + (h::bigint * 7919) % {m - 41},
                   state,
                   CASE WHEN state = 'READY' THEN current_date - 2 + h % 6 END,
                   now() - ((({size.holds} - h) * 720) / {size.holds}) * interval '1 day',
                   CASE WHEN state NOT IN ('WAITING', 'READY')
                        THEN now() - ((({size.holds} - h) * 700) / {size.holds})
                             * interval '1 day' END
            FROM generate_series(1, {size.holds}) h,
                 LATERAL (SELECT CASE WHEN h % 10 = 0 THEN 'WAITING'
                                      WHEN h % 25 = 1 THEN 'READY'
                                      WHEN h % 10 IN (2, 3) THEN 'CANCELLED'
                                      WHEN h % 10 = 4 THEN 'EXPIRED'
                                      ELSE 'FULFILLED' END) AS s(state)
            """,
        ),
        (
            "staff messages",
            f"""
            INSERT INTO notifications (kind, text, status, attempts, next_attempt_at,
                                       last_error, created_at, sent_at)
            SELECT kind,
                   CASE kind WHEN 'borrowed' THEN 'New borrowing #' || g || ': '
                             WHEN 'returned' THEN 'Returned #' || g || ': '
                             ELSE 'Payment received for borrowing #' || g || ': ' END
                     || {_pick(TITLE_WORDS, "g::bigint * 7")} || ' '
                     || {_pick(TITLE_WORDS, "g / 7")} || ' by '
                     || {_pick(LAST_NAMES, "g::bigint * 3")},
                   state, CASE WHEN state = 'PENDING' THEN 0 ELSE 1 END,
                   at, CASE WHEN state = 'FAILED' THEN 'Telegram said: chat not found' END,
                   at, CASE WHEN state = 'SENT' THEN at + interval '1 second' END
            FROM generate_series(1, {size.messages}) g,
                 LATERAL (SELECT (ARRAY['borrowed', 'returned', 'payment'])[1 + g % 3],
                                 CASE WHEN g > {size.messages} - 50 THEN 'PENDING'
                                      WHEN g % 1000 = 7 THEN 'FAILED' ELSE 'SENT' END,
                                 now() - ((({size.messages} - g)::bigint * 3600 * 24 * 365)
                                          / {size.messages}) * interval '1 second'
                         ) AS s(kind, state, at)
            """,
        ),
        (
            "idempotency keys",
            f"""
            INSERT INTO idempotency_keys (user_id, key, request_hash, owner, committed_at,
                                          status_code, response_headers, response_body,
                                          created_at, expires_at)
            SELECT 42 + g % {m - 41}, 'seed-' || g, decode(md5(g::text), 'hex'), NULL,
                   at, 201, '[]'::jsonb, convert_to('{{"id": ' || g || '}}', 'UTF8'),
                   at, at + interval '24 hours'
            FROM generate_series(1, {size.idempotency_keys}) g,
                 LATERAL (SELECT now() - ((g % 10) * 2 + 9) * interval '1 hour') AS s(at)
            """,
        ),
    ]


SEQUENCES = ("books", "users", "borrowings", "payments", "holds", "notifications")


async def fill(url: str, size: LibrarySize, say: Callable[[str], None]) -> dict[str, float]:
    """Seed an empty, migrated database; VACUUM ANALYZE; the seconds each step took."""
    from passlib.context import CryptContext

    hashed = CryptContext(schemes=["bcrypt"], bcrypt__rounds=seed.BCRYPT_ROUNDS).hash(seed.PASSWORD)
    timings: dict[str, float] = {}
    connection: Any = await seed.connect(url)
    try:
        await connection.execute("SET session_replication_role = replica")  # no FK triggers
        await connection.execute("SET maintenance_work_mem = '256MB'")
        await connection.execute("SET synchronous_commit = off")
        for what, sql in statements(size, hashed):
            started = time.monotonic()
            await connection.execute(sql)
            timings[what] = time.monotonic() - started
            say(f"  {size.name}: {what} in {timings[what]:.1f} s")
        for table in SEQUENCES:
            await connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        started = time.monotonic()
        await connection.execute("VACUUM (ANALYZE)")
        timings["VACUUM ANALYZE"] = time.monotonic() - started
        say(f"  {size.name}: VACUUM ANALYZE in {timings['VACUUM ANALYZE']:.1f} s")
    finally:
        await connection.close()
    return timings
