"""circulation: holds queue, loan extensions, withdrawn books

Revision ID: f6c5b8a7d9e0
Revises: e5b4a7f6c8d9
Create Date: 2026-11-30 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f6c5b8a7d9e0"
down_revision: str | None = "e5b4a7f6c8d9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status IN ('WAITING', 'READY')"


def upgrade() -> None:
    op.add_column(
        "books", sa.Column("withdrawn", sa.Boolean(), server_default="false", nullable=False)
    )
    op.add_column(
        "borrowings",
        sa.Column("extensions", sa.Integer(), server_default="0", nullable=False),
    )
    op.create_table(
        "holds",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("book_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(9), server_default="WAITING", nullable=False),
        sa.Column("ready_until", sa.Date(), nullable=True),
        sa.Column("borrowing_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('WAITING', 'READY', 'FULFILLED', 'CANCELLED', 'EXPIRED')",
            name=op.f("ck_holds_status_valid"),
        ),
        sa.CheckConstraint(
            "status <> 'READY' OR ready_until IS NOT NULL",
            name=op.f("ck_holds_ready_has_ready_until"),
        ),
        sa.ForeignKeyConstraint(
            ["book_id"], ["books.id"], name=op.f("fk_holds_book_id_books"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_holds_user_id_users"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["borrowing_id"],
            ["borrowings.id"],
            name=op.f("fk_holds_borrowing_id_borrowings"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holds")),
    )
    op.create_index("ix_holds_user_id_id", "holds", ["user_id", "id"])
    op.create_index(
        "ix_holds_waiting_book_id_id",
        "holds",
        ["book_id", "id"],
        postgresql_where=sa.text("status = 'WAITING'"),
    )
    op.create_index(
        "ix_holds_ready_ready_until",
        "holds",
        ["ready_until"],
        postgresql_where=sa.text("status = 'READY'"),
    )
    op.create_index(
        "uq_holds_open_user_id_book_id",
        "holds",
        ["user_id", "book_id"],
        unique=True,
        postgresql_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_table("holds")
    op.drop_column("borrowings", "extensions")
    op.drop_column("books", "withdrawn")
