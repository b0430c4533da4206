"""The library's clock: "now" in UTC and "today" as a library-local calendar date.

Every date rule (loan length, lateness, the daily report) reads the time from here, so tests
can freeze it, e.g. on either side of midnight or a DST change in the library's time zone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from library_service.core.errors import InvalidDateRangeError

_frozen_at: datetime | None = None


def now() -> datetime:
    """The current instant, timezone-aware, in UTC."""
    return _frozen_at if _frozen_at is not None else datetime.now(UTC)


def today(tz: tzinfo) -> date:
    """The calendar date at the library (`tz` is `LIBRARY_TIMEZONE`)."""
    return now().astimezone(tz).date()


def start_of(day: date, tz: tzinfo) -> datetime:
    """The instant the library day `day` begins."""
    return datetime.combine(day, time(), tz)


def library_days(
    since: date | None, until: date | None, tz: tzinfo
) -> tuple[datetime | None, datetime | None]:
    """The instants a report's library days `since` to `until` (both included; either may
    be open) run between: from the first's start to the start of the day after the last.
    InvalidDateRangeError if `since` comes after `until`. The calendar's first and last
    days leave that end open (there is no day after 9999-12-31)."""
    if since is not None and until is not None and since > until:
        raise InvalidDateRangeError
    start = start_of(since, tz) if since is not None and since > date.min else None
    end = (
        start_of(until + timedelta(days=1), tz) if until is not None and until < date.max else None
    )
    return start, end


@contextmanager
def frozen(at: datetime) -> Iterator[None]:
    """Stop the clock at `at` (must be timezone-aware) for the duration of the block."""
    global _frozen_at
    if at.tzinfo is None:
        raise ValueError("freeze the clock with an aware datetime")
    previous, _frozen_at = _frozen_at, at.astimezone(UTC)
    try:
        yield
    finally:
        _frozen_at = previous
