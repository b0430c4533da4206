from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

from library_service.core.money import Money
from library_service.models import Cover
from library_service.web.params import InputModel, JsonBool, JsonInt, PatchModel


def _normalize_isbn(value: str) -> str:
    """Accept ISBN-10/13 with or without hyphens and spaces; store the bare digits."""
    digits = value.replace("-", "").replace(" ", "").upper()
    if len(digits) == 13 and digits.isdigit():
        checksum = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(digits))
        if checksum % 10 == 0:
            return digits
    elif len(digits) == 10 and digits[:9].isdigit() and (digits[9].isdigit() or digits[9] == "X"):
        values = [int(d) for d in digits[:9]] + [10 if digits[9] == "X" else int(digits[9])]
        if sum((10 - i) * v for i, v in enumerate(values)) % 11 == 0:
            return digits
    raise ValueError("ISBN must be a valid ISBN-10 or ISBN-13 (check digit included)")


def _not_in_future(value: int) -> int:
    if value > date.today().year + 1:
        raise ValueError("year cannot be more than a year ahead")
    return value


Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
Author = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
Inventory = Annotated[JsonInt, Field(ge=0, le=1_000_000, description="Copies on the shelf now.")]
# With loans of at most MAX_BORROW_DAYS (365 at the most), a loan never costs more than one
# Stripe charge can be (core/money.py's MAX_CHARGE).
MAX_DAILY_FEE = Decimal("1000.00")
DailyFee = Annotated[
    Decimal,
    Field(
        gt=0,
        le=MAX_DAILY_FEE,
        decimal_places=2,
        description=f"USD per day, at most {MAX_DAILY_FEE}.",
        examples=["1.50"],
    ),
]
Isbn = Annotated[
    str, Field(max_length=20, examples=["978-0-14-143951-8"]), AfterValidator(_normalize_isbn)
]
Year = Annotated[JsonInt, Field(ge=1, examples=[1813]), AfterValidator(_not_in_future)]
Description = Annotated[str, Field(max_length=5000)]
Withdrawn = Annotated[
    JsonBool,
    Field(
        description=(
            "Out of circulation: not lent or held, left out of the catalogue; open holds are "
            "cancelled. Set it back to false to reinstate the book."
        )
    ),
]


class BookCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "Middlemarch",
                    "author": "George Eliot",
                    "cover": "HARD",
                    "inventory": 2,
                    "daily_fee": "1.50",
                    "year": 1871,
                }
            ]
        }
    )

    title: Title
    author: Author
    cover: Cover
    inventory: Inventory
    daily_fee: DailyFee
    isbn: Isbn | None = None
    year: Year | None = None
    description: Description | None = None
    withdrawn: Withdrawn = False


class BookPatch(PatchModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"inventory": 4}]})

    not_nullable = ("title", "author", "cover", "inventory", "daily_fee", "withdrawn")

    title: Title | None = None
    author: Author | None = None
    cover: Cover | None = None
    inventory: Inventory | None = None
    daily_fee: DailyFee | None = None
    isbn: Isbn | None = None
    year: Year | None = None
    description: Description | None = None
    withdrawn: Withdrawn | None = None


class BookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    author: str
    cover: Cover
    inventory: int
    daily_fee: Money
    isbn: str | None
    year: int | None
    description: str | None
    withdrawn: bool


BookOrdering = Literal[
    "id", "-id", "title", "-title", "author", "-author", "daily_fee", "-daily_fee"
]


@dataclass(frozen=True, slots=True)
class BookFilters:
    """The catalogue's query: what to match and in which order."""

    search: str | None = None
    title: str | None = None
    author: str | None = None
    available: bool | None = None
    withdrawn: bool = False
    ordering: BookOrdering = "id"
