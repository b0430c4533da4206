from __future__ import annotations

from typing import Annotated, ClassVar, Self

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, field_validator, model_validator

MAX_ID = 2**31 - 1  # ids are PostgreSQL integers; larger values could never match

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
UserIdFilter = Annotated[
    int | None, Query(ge=1, le=MAX_ID, description="Staff only; ignored for members.")
]


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
