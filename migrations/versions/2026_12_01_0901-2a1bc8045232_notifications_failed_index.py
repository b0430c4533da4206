"""notifications: a partial index on the FAILED messages, which /metrics counts

Revision ID: 2a1bc8045232
Revises: f63984d77edd
Create Date: 2026-12-01 09:01:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2a1bc8045232"
down_revision: str | None = "f63984d77edd"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# squawk-ignore: require-concurrent-index-creation - applied before migrations were linted;
# it blocked writes to notifications while it was built (seconds on the outbox sizes then).
# A new index on a table that takes writes is built CONCURRENTLY (README, Development).


def upgrade() -> None:
    op.create_index(
        "ix_notifications_failed_id",
        "notifications",
        ["id"],
        postgresql_where=sa.text("status = 'FAILED'"),
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_failed_id", table_name="notifications")
