"""the desk: payments paid in cash or waived, and the append-only audit log

Payments gain `method` (card, cash, waived), `recorded_by` and the status WAIVED;
`audit_log` records every staff action, and a trigger refuses to change or delete a row.

Revision ID: 7d3e9a1c5b20
Revises: a7c3e9d1f2b4
Create Date: 2026-12-03 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "7d3e9a1c5b20"
down_revision: str | None = "a7c3e9d1f2b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# squawk-ignore: ban-drop-constraint - the status check is replaced by a wider one (WAIVED
# added) in the same transaction: no value the old one allowed is refused.
# squawk-ignore: constraint-missing-not-valid - the new checks are validated in the
# migration's own transaction: its column changes hold the table's lock anyway, and one
# transaction keeps the migration all-or-nothing (each check is a single pass over payments).


NEW_CONSTRAINTS = (
    "ck_payments_status_valid",
    "fk_payments_recorded_by_users",
    "ck_payments_method_valid",
    "ck_payments_waived_method",
)


def _add_check(name: str, condition: str) -> None:
    """A check that new rows must pass at once; the rows already there are checked once,
    at the end of the upgrade, after the backfill."""
    op.execute(f"ALTER TABLE payments ADD CONSTRAINT {name} CHECK ({condition}) NOT VALID")


def upgrade() -> None:
    op.drop_constraint(op.f("ck_payments_status_valid"), "payments", type_="check")
    _add_check("ck_payments_status_valid", "status IN ('PENDING', 'PAID', 'EXPIRED', 'WAIVED')")
    op.add_column("payments", sa.Column("method", sa.String(8), nullable=True))
    op.add_column("payments", sa.Column("recorded_by", sa.Integer(), nullable=True))
    op.execute(
        "ALTER TABLE payments ADD CONSTRAINT fk_payments_recorded_by_users FOREIGN KEY "
        "(recorded_by) REFERENCES users (id) ON DELETE RESTRICT NOT VALID"
    )
    # Every payment paid so far was paid by card at Stripe.
    op.execute("UPDATE payments SET method = 'card' WHERE status = 'PAID'")
    _add_check("ck_payments_method_valid", "method IS NULL OR method IN ('card', 'cash', 'waived')")
    _add_check(
        "ck_payments_waived_method", "(status = 'WAIVED') = (method IS NOT DISTINCT FROM 'waived')"
    )

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "actor_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="RESTRICT", name="fk_audit_log_actor_id_users"),
            nullable=False,
        ),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("target_type", sa.String(20), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("book_id", sa.Integer(), nullable=True),
        sa.Column(
            "changes",
            postgresql.JSONB(),
            nullable=False,
            server_default=sa.text("'{}'::jsonb"),
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "reason IS NULL OR length(reason) BETWEEN 1 AND 500",
            name=op.f("ck_audit_log_reason_length"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_actor_id", "audit_log", ["actor_id"])
    op.create_index("ix_audit_log_target", "audit_log", ["target_type", "target_id"])
    op.create_index(
        "ix_audit_log_member_id",
        "audit_log",
        ["member_id"],
        postgresql_where=sa.text("member_id IS NOT NULL"),
    )
    op.create_index(
        "ix_audit_log_book_id",
        "audit_log",
        ["book_id"],
        postgresql_where=sa.text("book_id IS NOT NULL"),
    )
    op.create_index("ix_audit_log_created_at", "audit_log", ["created_at"])
    # Append-only, whoever connects: the record of staff actions is never rewritten.
    op.execute(
        """
        CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER audit_log_append_only
        BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only()
        """
    )
    for name in NEW_CONSTRAINTS:
        op.execute(f"ALTER TABLE payments VALIDATE CONSTRAINT {name}")


def downgrade() -> None:
    op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
    op.execute("DROP FUNCTION audit_log_is_append_only()")
    op.drop_table("audit_log")
    op.drop_constraint(op.f("ck_payments_waived_method"), "payments", type_="check")
    op.drop_constraint(op.f("ck_payments_method_valid"), "payments", type_="check")
    op.drop_column("payments", "recorded_by")
    op.drop_column("payments", "method")
    op.drop_constraint(op.f("ck_payments_status_valid"), "payments", type_="check")
    op.create_check_constraint(
        op.f("ck_payments_status_valid"), "payments", "status IN ('PENDING', 'PAID', 'EXPIRED')"
    )
