"""payments and handled Stripe events

Revision ID: c3f2e5d4a6b7
Revises: b2e1d4c3f5a6
Create Date: 2026-11-25 09:02:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3f2e5d4a6b7"
down_revision: str | None = "b2e1d4c3f5a6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("status", sa.String(8), server_default="PENDING", nullable=False),
        sa.Column("type", sa.String(8), nullable=False),
        sa.Column("borrowing_id", sa.Integer(), nullable=False),
        sa.Column("session_url", sa.Text(), nullable=True),
        sa.Column("session_id", sa.String(255), nullable=True),
        sa.Column("session_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("money_to_pay", sa.Numeric(10, 2), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('PENDING', 'PAID', 'EXPIRED')", name=op.f("ck_payments_status_valid")
        ),
        sa.CheckConstraint("type IN ('PAYMENT', 'FINE')", name=op.f("ck_payments_type_valid")),
        sa.CheckConstraint("money_to_pay > 0", name=op.f("ck_payments_money_to_pay_positive")),
        sa.ForeignKeyConstraint(
            ["borrowing_id"],
            ["borrowings.id"],
            name=op.f("fk_payments_borrowing_id_borrowings"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("session_id", name=op.f("uq_payments_session_id")),
    )
    op.create_index("ix_payments_borrowing_id", "payments", ["borrowing_id"])
    op.create_index(
        "ix_payments_pending", "payments", ["id"], postgresql_where=sa.text("status = 'PENDING'")
    )

    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_events")),
    )


def downgrade() -> None:
    op.drop_table("stripe_events")
    op.drop_table("payments")
