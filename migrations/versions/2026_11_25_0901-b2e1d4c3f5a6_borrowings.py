"""borrowings

Revision ID: b2e1d4c3f5a6
Revises: a1f0c3d2e4b5
Create Date: 2026-11-25 09:01:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b2e1d4c3f5a6"
down_revision: str | None = "a1f0c3d2e4b5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "borrowings",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("borrow_date", sa.Date(), nullable=False),
        sa.Column("expected_return_date", sa.Date(), nullable=False),
        sa.Column("actual_return_date", sa.Date(), nullable=True),
        sa.Column("book_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "expected_return_date > borrow_date", name=op.f("ck_borrowings_expected_after_borrow")
        ),
        sa.CheckConstraint(
            "actual_return_date >= borrow_date", name=op.f("ck_borrowings_returned_after_borrow")
        ),
        sa.ForeignKeyConstraint(
            ["book_id"], ["books.id"], name=op.f("fk_borrowings_book_id_books"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_borrowings_user_id_users"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_borrowings")),
    )
    op.create_index("ix_borrowings_user_id_id", "borrowings", ["user_id", "id"])
    op.create_index("ix_borrowings_book_id", "borrowings", ["book_id"])
    op.create_index(
        "ix_borrowings_active_user_id",
        "borrowings",
        ["user_id"],
        postgresql_where=sa.text("actual_return_date IS NULL"),
    )
    op.create_index(
        "ix_borrowings_active_expected_return_date",
        "borrowings",
        ["expected_return_date"],
        postgresql_where=sa.text("actual_return_date IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("borrowings")
