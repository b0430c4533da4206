"""indexes for a large library: searches, broad staff lists and the sweeps

Every index is built CONCURRENTLY (outside the migration's transaction), so that a live
library keeps lending while it is built; a build that failed leaves an INVALID index,
which the next run drops and builds again.

Revision ID: 7c1e5a9d2b40
Revises: 2a1bc8045232
Create Date: 2026-12-03 10:00:00

"""

from collections.abc import Sequence
from dataclasses import dataclass

from alembic import op

revision: str = "7c1e5a9d2b40"
down_revision: str | None = "2a1bc8045232"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


@dataclass(frozen=True)
class NewIndex:
    name: str
    table: str
    columns: list[str]
    where: str | None = None
    trigram: bool = False


NEW_INDEXES = (
    # ?is_staff=true on the members list: a handful among the members.
    NewIndex("ix_users_staff_id", "users", ["id"], "is_staff IS TRUE"),
    # ?search= on the members list: email, first or last name contains the term.
    NewIndex("ix_users_email_trgm", "users", ["email"], trigram=True),
    NewIndex("ix_users_first_name_trgm", "users", ["first_name"], trigram=True),
    NewIndex("ix_users_last_name_trgm", "users", ["last_name"], trigram=True),
    # A catalogue search for part of an ISBN (digits only); a whole ISBN uses uq_books_isbn.
    NewIndex("ix_books_isbn_trgm", "books", ["isbn"], trigram=True),
    # ?withdrawn=true: the few books out of circulation, by title.
    NewIndex("ix_books_withdrawn_title_id", "books", ["title", "id"], "withdrawn IS TRUE"),
    # Staff's ?is_active=true, newest first, and the desk's "on loan" and "overdue" tabs.
    NewIndex("ix_borrowings_active_id", "borrowings", ["id"], "actual_return_date IS NULL"),
    # The overdue report, in its order.
    NewIndex(
        "ix_borrowings_active_expected_return_date_id",
        "borrowings",
        ["expected_return_date", "id"],
        "actual_return_date IS NULL",
    ),
    # Staff's ?book_id= and ?status= on holds, newest first; the hold expiry in its order.
    NewIndex("ix_holds_book_id_id", "holds", ["book_id", "id"]),
    NewIndex("ix_holds_status_id", "holds", ["status", "id"]),
    NewIndex("ix_holds_ready_ready_until_id", "holds", ["ready_until", "id"], "status = 'READY'"),
    # Staff's ?status= on payments other than PAID (few among millions), newest first.
    NewIndex("ix_payments_unpaid_status_id", "payments", ["status", "id"], "status <> 'PAID'"),
    # The expiry poll (soonest to expire first) and the retry of fines without a session.
    NewIndex(
        "ix_payments_open_session_expires_at_id",
        "payments",
        ["session_expires_at", "id"],
        "status = 'PENDING' AND session_id IS NOT NULL",
    ),
    NewIndex(
        "ix_payments_pending_without_session_id",
        "payments",
        ["id"],
        "status = 'PENDING' AND session_id IS NULL",
    ),
    # The relay sweep takes pending messages in id order.
    NewIndex("ix_notifications_pending_id", "notifications", ["id"], "status = 'PENDING'"),
)
# Replaced by the ones above that also carry the sweep's tie-breaking id.
REPLACED = (
    NewIndex(
        "ix_borrowings_active_expected_return_date",
        "borrowings",
        ["expected_return_date"],
        "actual_return_date IS NULL",
    ),
    NewIndex("ix_holds_ready_ready_until", "holds", ["ready_until"], "status = 'READY'"),
)


def _create(index: NewIndex) -> None:
    op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index.name}")  # an INVALID leftover
    columns = ", ".join(
        f"{column} gin_trgm_ops" if index.trigram else column for column in index.columns
    )
    using = " USING gin" if index.trigram else ""
    where = f" WHERE {index.where}" if index.where else ""
    op.execute(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {index.name} ON {index.table}{using} ({columns}){where}"
    )


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for index in NEW_INDEXES:
            _create(index)
        for index in REPLACED:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index.name}")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for index in REPLACED:
            _create(index)
        for index in reversed(NEW_INDEXES):
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index.name}")
