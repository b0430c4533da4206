"""users and books

Revision ID: a1f0c3d2e4b5
Revises:
Create Date: 2026-11-25 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a1f0c3d2e4b5"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Trigram indexes make case-insensitive substring search usable on a large catalogue.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("hashed_password", sa.String(128), nullable=False),
        sa.Column("first_name", sa.String(150), server_default="", nullable=False),
        sa.Column("last_name", sa.String(150), server_default="", nullable=False),
        sa.Column("is_staff", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column(
            "date_joined", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_index("uq_users_email_lower", "users", [sa.text("lower(email)")], unique=True)

    op.create_table(
        "books",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("author", sa.String(255), nullable=False),
        sa.Column("cover", sa.String(4), nullable=False),
        sa.Column("inventory", sa.Integer(), nullable=False),
        sa.Column("daily_fee", sa.Numeric(10, 2), nullable=False),
        sa.Column("isbn", sa.String(13), nullable=True),
        sa.Column("year", sa.SmallInteger(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.CheckConstraint("inventory >= 0", name=op.f("ck_books_inventory_non_negative")),
        sa.CheckConstraint("daily_fee > 0", name=op.f("ck_books_daily_fee_positive")),
        sa.CheckConstraint("cover IN ('HARD', 'SOFT')", name=op.f("ck_books_cover_valid")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_books")),
        sa.UniqueConstraint("isbn", name=op.f("uq_books_isbn")),
    )
    op.create_index(
        "ix_books_title_trgm",
        "books",
        ["title"],
        postgresql_using="gin",
        postgresql_ops={"title": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_books_author_trgm",
        "books",
        ["author"],
        postgresql_using="gin",
        postgresql_ops={"author": "gin_trgm_ops"},
    )
    op.create_index("ix_books_title_id", "books", ["title", "id"])
    op.create_index("ix_books_author_id", "books", ["author", "id"])
    op.create_index("ix_books_daily_fee_id", "books", ["daily_fee", "id"])


def downgrade() -> None:
    op.drop_table("books")
    op.drop_table("users")
