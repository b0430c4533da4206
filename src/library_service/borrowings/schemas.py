from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from library_service.books.schemas import BookRead
from library_service.core.money import Money
from library_service.models import Cover
from library_service.payments.schemas import PaymentRead
from library_service.users.schemas import MemberRowFilters
from library_service.web.params import MAX_ID, InputModel, IsoDate, JsonInt


class BorrowingCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"book": 1, "expected_return_date": "2026-01-08"}]}
    )

    book: JsonInt = Field(ge=1, le=MAX_ID, description="The book's id.")
    expected_return_date: IsoDate = Field(
        description="After today, and at most MAX_BORROW_DAYS (60) ahead."
    )
    user: JsonInt | None = Field(
        default=None,
        ge=1,
        le=MAX_ID,
        description="Staff at the desk: the member the book is lent to (default: yourself).",
    )


class BorrowingExtend(InputModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"expected_return_date": "2026-01-15"}]}
    )

    expected_return_date: IsoDate = Field(
        description=(
            "Later than the current one, and at most MAX_BORROW_DAYS (60) from today; the "
            "added days are charged."
        )
    )


class BookSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    author: str
    cover: Cover
    daily_fee: Money


class _BorrowingFields(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    borrow_date: date
    expected_return_date: date
    actual_return_date: date | None
    is_active: bool
    user_id: int
    extensions: int = Field(description="How often the loan was extended (MAX_EXTENSIONS).")


class BorrowingRead(_BorrowingFields):
    """A borrowing in a list."""

    book: BookSummary


class BorrowingDetail(_BorrowingFields):
    """A borrowing with its book's details and all its payments."""

    book: BookRead
    payments: list[PaymentRead]


@dataclass(frozen=True, slots=True)
class BorrowingFilters(MemberRowFilters):
    is_active: bool | None = None
