"""Case-insensitive substring search: how the API's lists and the staff admin match text."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, literal_column, or_
from sqlalchemy.orm import QueryableAttribute

from library_service.models import User


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


# "First Last", written as the trigram index ix_users_full_name_trgm is (the constant
# inline, not a bound parameter, so the planner matches the index's expression).
FULL_NAME = User.first_name.concat(literal_column("' '")).concat(User.last_name)


def member_search(term: str) -> ColumnElement[bool]:
    """A member whose email or full name ("First Last") contains `term`: "Rita Reader",
    "reader" and "rita@" all find Rita Reader."""
    return text_search(term, User.email, FULL_NAME)
