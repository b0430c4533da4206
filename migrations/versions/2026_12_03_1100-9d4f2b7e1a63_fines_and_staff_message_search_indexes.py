"""indexes for staff's ?type=FINE on payments and the admin's staff-message search

Built CONCURRENTLY (outside the migration's transaction), as 2026_12_03_1000 builds its
own: a build that failed leaves an INVALID index, which the next run drops and builds again.

Revision ID: 9d4f2b7e1a63
Revises: 7c1e5a9d2b40
Create Date: 2026-12-03 11:00:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "9d4f2b7e1a63"
down_revision: str | None = "7c1e5a9d2b40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_INDEXES = {
    # Staff's ?type=FINE, newest first, and its capped count: the fines are one payment in
    # twenty, and a scan for the first 1,001 of them read 190,000 payments.
    "ix_payments_fine_id": "payments (id) WHERE type = 'FINE'",
    # The admin's staff-message search: the text or the last error contains the term (both
    # sides of the OR indexed, or PostgreSQL reads every message).
    "ix_notifications_text_trgm": "notifications USING gin (text gin_trgm_ops)",
    "ix_notifications_last_error_trgm": "notifications USING gin (last_error gin_trgm_ops)",
}


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for name, definition in NEW_INDEXES.items():
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")  # an INVALID leftover
            op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {definition}")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name in reversed(NEW_INDEXES):
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
