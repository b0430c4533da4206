from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, ClassVar, Self

from fastapi import Path, Query
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    StrictBool,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

MAX_ID = 2**31 - 1  # ids are PostgreSQL integers; larger values could never match

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
UserIdFilter = Annotated[
    int | None, Query(ge=1, le=MAX_ID, description="Staff only; ignored for members.")
]


# Request bodies take JSON's own types. FastAPI validates the parsed JSON in pydantic's lax
# mode, which would read `true` as the id 1, "1" as 1, "yes" as a boolean and a Unix time as a
# date: a client's mistake would act on the wrong row instead of answering 422.


def _json_integer(value: object) -> object:
    """A JSON number (a float only if it is whole, as lax mode then allows); not a boolean or
    a string."""
    if isinstance(value, bool | str):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: object) -> object:
    """A date written YYYY-MM-DD (or a `date` made in Python); not a number of seconds."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        raise PydanticCustomError("date_type", "Input should be a date written YYYY-MM-DD")
    return value


JsonInt = Annotated[int, BeforeValidator(_json_integer)]
JsonBool = StrictBool
IsoDate = Annotated[date, BeforeValidator(_iso_date)]


def _reject_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it up front with a 422 instead of a 500.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


CleanStr = Annotated[str, AfterValidator(_reject_nul)]


class InputModel(BaseModel):
    """Base of every request body: no string field may carry a NUL character."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        return _reject_nul(value) if isinstance(value, str) else value


class PatchModel(InputModel):
    """A partial update: fields may be left out; those in `not_nullable` may not be null."""

    not_nullable: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _required_fields_not_null(self) -> Self:
        nulls = [
            name
            for name in self.not_nullable
            if name in self.model_fields_set and getattr(self, name) is None
        ]
        if nulls:
            raise ValueError(f"{', '.join(nulls)} may be left out but not set to null")
        return self
