"""Behind PgBouncer in transaction mode (DATABASE_POOLER=pgbouncer) a server connection passes
from client to client between transactions, so nothing may count on a session outliving its
transaction: no advisory lock held across transactions, no session SET, no LISTEN/NOTIFY, no
temporary table, no WITH HOLD cursor. The service uses none (the README says so); this keeps
it so. `SET LOCAL` and transaction-level advisory locks end with their transaction: fine."""

from __future__ import annotations

import re
from pathlib import Path

import library_service

SOURCE = Path(library_service.__file__).parent
# SQL keywords as the project writes them (upper case), so that English ("listen on port")
# and SQLAlchemy's event.listen do not count.
SESSION_STATE = re.compile(
    r"pg_(?:try_)?advisory_(?!xact_)\w*lock"  # pg_advisory_lock… (not the _xact_ ones)
    r"|\b(?:UN)?LISTEN\s|\bNOTIFY\s|pg_notify|add_listener\("
    r"""|(?:^|[;"'(]\s*)SET\s+(?!LOCAL\b)(?:SESSION\s+)?[a-z_]+\s*(?:=|TO\b)"""  # a statement
    r"|CREATE\s+(?:GLOBAL\s+|LOCAL\s+)?TEMP(?:ORARY)?\b|WITH\s+HOLD"
)


def session_state_in(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if SESSION_STATE.search(line)]


def test_the_pattern_finds_what_a_pooler_breaks_and_passes_what_it_does_not():
    assert session_state_in('await connection.execute(text("SET statement_timeout = 0"))')
    assert session_state_in("LISTEN jobs")
    assert session_state_in("SELECT pg_advisory_lock(42)")
    assert session_state_in("await raw.add_listener('jobs', on_job)")
    assert session_state_in("CREATE TEMP TABLE picked (id int)")
    assert session_state_in("DECLARE c CURSOR WITH HOLD FOR SELECT 1")
    assert not session_state_in("\"SET LOCAL lock_timeout = '5s'\"")
    assert not session_state_in("SELECT pg_advisory_xact_lock(42)")
    assert not session_state_in("UPDATE books SET inventory = inventory - 1")
    assert not session_state_in(".values(status='PENDING')  # settings, offset, reset")
    assert not session_state_in('event.listen(pool, "checkout", checked_out)')
    assert not session_state_in('"the sandbox cannot listen on port 8010: is it taken? "')
    assert not session_state_in('"Set SANDBOX_STRIPE_PORT to a free port (0: any)."')


def test_nothing_in_the_service_counts_on_a_session_beyond_its_transaction():
    found = {
        f"{path.relative_to(SOURCE)}: {line}"
        for path in sorted(SOURCE.rglob("*.py"))
        for line in session_state_in(path.read_text())
    }
    assert found == set()
