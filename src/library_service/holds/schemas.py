from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from library_service.borrowings.schemas import BookSummary
from library_service.models import HoldStatus
from library_service.users.schemas import MemberRowFilters
from library_service.web.params import MAX_ID, InputModel, JsonInt


class HoldCreate(InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"book": 98}]})

    book: JsonInt = Field(
        ge=1, le=MAX_ID, description="The book's id; no copy may be on the shelf."
    )


class HoldRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: HoldStatus
    user_id: int
    book: BookSummary
    position: int | None = Field(description="WAITING: the place in the queue, 1 = next.")
    ready_until: date | None = Field(description="READY: collect it by this day.")
    borrowing_id: int | None = Field(description="FULFILLED: the borrowing that took it.")
    created_at: datetime


@dataclass(frozen=True, slots=True)
class HoldFilters(MemberRowFilters):
    book_id: int | None = None
    status: HoldStatus | None = None
