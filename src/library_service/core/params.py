from __future__ import annotations

from typing import Annotated

from fastapi import Path

MAX_ID = 2**31 - 1  # ids are PostgreSQL integers; larger values could never match

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
