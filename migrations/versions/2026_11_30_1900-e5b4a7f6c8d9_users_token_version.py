"""users.token_version: a password change ends the tokens issued before it

Revision ID: e5b4a7f6c8d9
Revises: d4a3f6e5b7c8
Create Date: 2026-11-30 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e5b4a7f6c8d9"
down_revision: str | None = "d4a3f6e5b7c8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("token_version", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("users", "token_version")
