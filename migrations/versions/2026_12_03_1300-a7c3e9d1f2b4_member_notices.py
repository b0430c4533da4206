"""member notices (the members' outbox and in-app list), password links, email_reminders

Revision ID: a7c3e9d1f2b4
Revises: 9d4f2b7e1a63
Create Date: 2026-12-03 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "a7c3e9d1f2b4"
down_revision: str | None = "9d4f2b7e1a63"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("email_reminders", sa.Boolean(), server_default="true", nullable=False),
    )
    op.create_table(
        "member_notices",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "facts",
            postgresql.JSONB(),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("link_path", sa.Text()),
        sa.Column("frontend_path", sa.Text()),
        sa.Column("link_label", sa.String(64)),
        sa.Column("secret", sa.Text()),
        sa.Column("to_address", sa.String(254)),
        sa.Column("status", sa.String(8), server_default="PENDING", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text()),
        sa.Column("dedupe_key", sa.String(96)),
        sa.Column("read_at", sa.DateTime(timezone=True)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "status IN ('PENDING', 'SENT', 'FAILED', 'SKIPPED')",
            name=op.f("ck_member_notices_status_valid"),
        ),
        # No foreign key to users: see the model (a key-share lock under a book's lock).
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_notices")),
    )
    op.create_index("ix_member_notices_user_id_id", "member_notices", ["user_id", "id"])
    op.create_index(
        "ix_member_notices_unread_user_id",
        "member_notices",
        ["user_id"],
        postgresql_where=sa.text("read_at IS NULL"),
    )
    op.create_index(
        "ix_member_notices_pending_next_attempt_at",
        "member_notices",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'PENDING'"),
    )
    op.create_index(
        "ix_member_notices_failed_id",
        "member_notices",
        ["id"],
        postgresql_where=sa.text("status = 'FAILED'"),
    )
    op.create_index(
        "uq_member_notices_dedupe_key",
        "member_notices",
        ["dedupe_key"],
        unique=True,
        postgresql_where=sa.text("dedupe_key IS NOT NULL"),
    )
    op.create_table(
        "password_tokens",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(8), nullable=False),
        sa.Column("token_version", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "purpose IN ('reset', 'welcome')", name=op.f("ck_password_tokens_purpose_valid")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_password_tokens_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_tokens_token_hash")),
    )
    op.create_index("ix_password_tokens_user_id", "password_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_table("password_tokens")
    op.drop_table("member_notices")
    op.drop_column("users", "email_reminders")
