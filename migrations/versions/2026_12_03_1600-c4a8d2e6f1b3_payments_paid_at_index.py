"""payments collected over some days: an index on paid_at, for PAID payments only

GET /api/payments/totals/ and the Desk's cash taken today read the payments paid between two
instants; without it, each read every payment. Built concurrently, outside a transaction.

Revision ID: c4a8d2e6f1b3
Revises: 5b8e2f4c9a17
Create Date: 2026-12-03 16:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c4a8d2e6f1b3"
down_revision: str | None = "5b8e2f4c9a17"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_payments_paid_at"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")  # an INVALID leftover
        op.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON payments (paid_at) "
            "WHERE status = 'PAID'"
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
