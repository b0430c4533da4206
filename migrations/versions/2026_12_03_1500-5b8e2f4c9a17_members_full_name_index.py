"""members found by full name: a trigram index on "First Last"

The desk finds a member by full name ("Rita Reader"): the search matches `first_name || ' '
|| last_name`, an expression this index serves (concat_ws could not be indexed: it is only
STABLE). Built concurrently, outside a transaction.

Revision ID: 5b8e2f4c9a17
Revises: 7d3e9a1c5b20
Create Date: 2026-12-03 15:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5b8e2f4c9a17"
down_revision: str | None = "7d3e9a1c5b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_users_full_name_trgm"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")  # an INVALID leftover
        op.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON users "
            "USING gin ((first_name || ' ' || last_name) gin_trgm_ops)"
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
