"""How each test starts from an empty database, cheaply.

TRUNCATE gives every table (and each of its indexes) a new file and waits for the commit to
reach the disk: about 10 tables, 30-200 ms a test here, most of the suite's time. A DELETE of
the few rows a test made costs well under a millisecond per table. So each test starts with
one round trip that deletes every row, children before their parents, and restarts every
sequence (ids count from 1 again, as after `TRUNCATE ... RESTART IDENTITY`).

The tables, their order and the sequences are read from the migrated database's catalog once
per run, so a table a new migration adds is emptied too, with nothing to list by hand. A
schema the order cannot be found for (foreign keys in a cycle) falls back to TRUNCATE, and a
table whose own trigger refuses DELETE (the append-only audit log) is truncated, when it
has rows.
"""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter
from typing import Any

# Every table and sequence of the schema the migrations made; alembic_version stays.
TABLES = """
SELECT c.oid::regclass::text FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
  AND NOT c.relispartition AND c.relname <> 'alembic_version'
"""
SEQUENCES = """
SELECT c.oid::regclass::text FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'S'
"""
# Tables with a trigger of their own on DELETE (the append-only audit log refuses it).
GUARDED = """
SELECT DISTINCT tgrelid::regclass::text FROM pg_trigger
WHERE NOT tgisinternal AND (tgtype & 8) <> 0
"""
# (referencing table, referenced table) for every foreign key between two tables.
FOREIGN_KEYS = """
SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint
WHERE contype = 'f' AND connamespace = current_schema()::regnamespace
"""


async def emptying_script(connection: Any, *, restart_sequences: bool = True) -> str:
    """The SQL that empties every table and restarts every sequence, as one script (for
    asyncpg's `execute`, which runs a script of several statements in one transaction).

    `restart_sequences=False` keeps the ids counting: for processes that outlive the reset
    (the many-process tests), where a job still queued for message 4 of the last test must
    not find, or settle, the next test's message 4.
    """
    tables = [row[0] for row in await connection.fetch(TABLES)]
    sequences = [row[0] for row in await connection.fetch(SEQUENCES)] if restart_sequences else []
    restart = "SELECT " + ", ".join(f"setval('{name}', 1, false)" for name in sequences)
    try:
        order = _children_first(tables, await connection.fetch(FOREIGN_KEYS))
    except CycleError:
        identity = " RESTART IDENTITY" if restart_sequences else ""
        return f"TRUNCATE {', '.join(tables)}{identity} CASCADE"
    guarded = {row[0] for row in await connection.fetch(GUARDED)}
    deletes = [_empty(table, guarded=table in guarded) for table in order]
    return "\n".join([*deletes, restart if sequences else "", ""])


def _empty(table: str, *, guarded: bool) -> str:
    """A DELETE; for a table whose trigger refuses DELETE (append-only), a TRUNCATE (which
    fires no row trigger), and only when it holds rows: TRUNCATE is the slow one."""
    if not guarded:
        return f"DELETE FROM {table};"
    return f"DO $$ BEGIN IF EXISTS (SELECT FROM {table}) THEN TRUNCATE {table}; END IF; END $$;"


def _children_first(tables: list[str], foreign_keys: list[Any]) -> list[str]:
    """Each table before the tables it references."""
    referenced_by: dict[str, set[str]] = {table: set() for table in tables}
    for child, parent in foreign_keys:
        if child != parent and parent in referenced_by:  # a self-reference goes in one DELETE
            referenced_by[parent].add(child)
    return list(TopologicalSorter(referenced_by).static_order())
