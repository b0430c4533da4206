from __future__ import annotations

import enum
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Identity,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from library_service.models.base import Base


class Cover(enum.StrEnum):
    HARD = "HARD"
    SOFT = "SOFT"


class Book(Base):
    __tablename__ = "books"
    __table_args__ = (
        CheckConstraint("inventory >= 0", name="inventory_non_negative"),
        CheckConstraint("daily_fee > 0", name="daily_fee_positive"),
        CheckConstraint("cover IN ('HARD', 'SOFT')", name="cover_valid"),
        # Trigram indexes serve the case-insensitive substring search (ILIKE '%…%').
        Index(
            "ix_books_title_trgm",
            "title",
            postgresql_using="gin",
            postgresql_ops={"title": "gin_trgm_ops"},
        ),
        Index(
            "ix_books_author_trgm",
            "author",
            postgresql_using="gin",
            postgresql_ops={"author": "gin_trgm_ops"},
        ),
        # Part of an ISBN (digits); a whole ISBN is looked up in uq_books_isbn.
        Index(
            "ix_books_isbn_trgm",
            "isbn",
            postgresql_using="gin",
            postgresql_ops={"isbn": "gin_trgm_ops"},
        ),
        # Ordered pages (?ordering=title|author|daily_fee) read these in order, id breaks ties.
        Index("ix_books_title_id", "title", "id"),
        Index("ix_books_author_id", "author", "id"),
        Index("ix_books_daily_fee_id", "daily_fee", "id"),
        # ?withdrawn=true: the few books out of circulation.
        Index("ix_books_withdrawn_title_id", "title", "id", postgresql_where="withdrawn IS TRUE"),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    title: Mapped[str] = mapped_column(String(255), nullable=False)
    author: Mapped[str] = mapped_column(String(255), nullable=False)
    cover: Mapped[str] = mapped_column(String(4), nullable=False)
    inventory: Mapped[int] = mapped_column(Integer, nullable=False)
    daily_fee: Mapped[Decimal] = mapped_column(Numeric(10, 2), nullable=False)
    isbn: Mapped[str | None] = mapped_column(String(13), unique=True)
    year: Mapped[int | None] = mapped_column(SmallInteger)
    description: Mapped[str | None] = mapped_column(Text)
    # Out of circulation: not lent or held, left out of the catalogue; returns still count.
    withdrawn: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
