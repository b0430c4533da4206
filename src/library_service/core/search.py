"""Case-insensitive substring search: how the API's lists and the staff admin match text."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_
from sqlalchemy.orm import QueryableAttribute


def contains_pattern(term: str) -> str:
    """An ILIKE pattern matching `term` anywhere, its wildcards taken literally."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def text_search(
    term: str, *columns: QueryableAttribute[Any] | ColumnElement[Any]
) -> ColumnElement[bool]:
    """Any of `columns` contains `term`, in any case."""
    pattern = contains_pattern(term)
    return or_(*(column.ilike(pattern, escape="\\") for column in columns))
