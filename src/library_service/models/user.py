from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Identity, Index, Integer, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from library_service.models.base import Base


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        Index("uq_users_email_lower", func.lower(text("email")), unique=True),
        # ?is_staff=true: a handful among the members.
        Index("ix_users_staff_id", "id", postgresql_where="is_staff IS TRUE"),
        # The members search: email, first or last name contains the term (ILIKE '%…%').
        *(
            Index(
                f"ix_users_{column}_trgm",
                column,
                postgresql_using="gin",
                postgresql_ops={column: "gin_trgm_ops"},
            )
            for column in ("email", "first_name", "last_name")
        ),
        # The desk's search by full name ("First Last", core/search.py).
        Index(
            "ix_users_full_name_trgm",
            text("(first_name || ' ' || last_name) gin_trgm_ops"),
            postgresql_using="gin",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), nullable=False)
    hashed_password: Mapped[str] = mapped_column(String(128), nullable=False)
    first_name: Mapped[str] = mapped_column(String(150), nullable=False, server_default="")
    last_name: Mapped[str] = mapped_column(String(150), nullable=False, server_default="")
    is_staff: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    # Written into every token; a password change bumps it, which ends the older tokens.
    token_version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # Due and overdue reminders by e-mail (they are in the app either way).
    email_reminders: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    date_joined: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
