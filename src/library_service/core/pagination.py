"""Limit/offset pagination with the `{count, next, previous, results}` envelope.

The count is exact up to `EXACT_COUNT_LIMIT` matches, which cost about a millisecond to
count whatever the table's size. Past that, counting would mean visiting every match (a
staff list of 2,000,000 borrowings: a quarter of a second; even 10,000 of them: 12 ms), so
the count is
PostgreSQL's own estimate of the matches instead (its planner's, from the statistics that
ANALYZE keeps), never less than `EXACT_COUNT_LIMIT + 1`. Pages are still served exactly:
only the total is approximate, and only that large.

A list also keeps such an estimate for a few seconds per filter set (`known_estimate`,
ESTIMATED_COUNT_CACHE_SECONDS): counting the cap's thousand matches again (a surname among
100,000 members: 4 ms of PostgreSQL's time, three times the page's) would only lead to an
estimate again.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy import ClauseElement, Executable, Label, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from library_service.core.db import AnyRow, AnySelect, Executor

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# A page starts at most this many rows in. An offset is served by reading every row before
# it (190,000 books: 90 ms, and each such request at 16 concurrent held a connection that
# long); past this, narrow the list with its filters or reverse its ordering.
MAX_OFFSET = 10_000
EXACT_COUNT_LIMIT = 1_000


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    offset: int


async def page_params(
    limit: Annotated[
        int, Query(ge=1, description=f"Page size; values above {MAX_LIMIT} count as {MAX_LIMIT}.")
    ] = DEFAULT_LIMIT,
    offset: Annotated[
        int,
        Query(
            ge=0,
            le=MAX_OFFSET,
            description=(
                f"Rows to skip, at most {MAX_OFFSET:,} (422 past that): for later rows, "
                "narrow the list with its filters or reverse its ordering."
            ),
        ),
    ] = 0,
) -> PageParams:
    return PageParams(limit=min(limit, MAX_LIMIT), offset=offset)


PageDep = Annotated[PageParams, Depends(page_params)]


def capped_count(statement: AnySelect) -> AnySelect:
    """How many rows `statement` selects, counted up to `EXACT_COUNT_LIMIT + 1` only."""
    matches = (
        statement.with_only_columns(literal(1), maintain_column_froms=True)
        .order_by(None)
        .limit(EXACT_COUNT_LIMIT + 1)
        .subquery("matches")
    )
    return select(func.count()).select_from(matches)


def capped_total(statement: AnySelect) -> Label[int]:
    """The capped count as a column beside each row of a page: one round trip, and an
    uncorrelated subquery, which PostgreSQL evaluates once per statement."""
    return capped_count(statement).scalar_subquery().label("total")


class _Explain(Executable, ClauseElement):
    """EXPLAIN (FORMAT JSON) of a select, its parameters bound as the select's own."""

    inherit_cache = False

    def __init__(self, statement: AnySelect) -> None:
        self.statement = statement


@compiles(_Explain, "postgresql")
def _compile_explain(element: _Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kw)


async def estimated_count(session: Executor, statement: AnySelect) -> int:
    """The planner's estimate of the rows `statement` selects (no row is read)."""
    counted = statement.with_only_columns(literal(1), maintain_column_froms=True).order_by(None)
    plan = (await session.execute(_Explain(counted))).scalar_one()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


async def settle_count(session: Executor, statement: AnySelect, capped: int | None) -> int:
    """The count to answer: `capped` if it is exact, the planner's estimate if it hit the
    cap (None: count it now, capped)."""
    if capped is None:
        capped = int(await session.scalar(capped_count(statement)) or 0)
    if capped <= EXACT_COUNT_LIMIT:
        return capped
    return max(EXACT_COUNT_LIMIT + 1, await estimated_count(session, statement))


class RecentTotals:
    """Recent totals per filter set, in this process; bounded, least recently used first out."""

    def __init__(self, size: int = 1024) -> None:
        self._entries: OrderedDict[Hashable, tuple[float, int]] = OrderedDict()
        self._size = size

    def get(self, key: Hashable, ttl: float) -> int | None:
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[0] > ttl:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: Hashable, total: int) -> None:
        self._entries[key] = (time.monotonic(), total)
        self._entries.move_to_end(key)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


# Filter sets that matched more than EXACT_COUNT_LIMIT rows, with the estimate answered.
_estimates = RecentTotals()


def known_estimate(filters: Hashable, ttl: float) -> int | None:
    """The estimate answered for `filters` (a list's filter set) in the last `ttl` seconds,
    if their count went past the cap then; such a list is served without counting again."""
    return _estimates.get(filters, ttl) if ttl > 0 else None


def keep_estimate(filters: Hashable, total: int) -> None:
    """Keeps a total past the cap (an estimate) for `known_estimate`; an exact total is
    counted every time."""
    if total > EXACT_COUNT_LIMIT:
        _estimates.put(filters, total)


async def fetch_page(
    session: AsyncSession,
    statement: AnySelect,
    page: PageParams,
    *,
    counted: AnySelect | None = None,
    filters: Hashable | None = None,
    estimate_ttl: float = 0,
) -> tuple[Sequence[AnyRow], int]:
    """One page of the rows `statement` selects, and how many it selects in all (or
    `counted` selects: the same rows without the joins that only add columns).

    The (capped) total comes in the same round trip, beside each row; only a page past the
    end, with no row to carry it, is counted apart. With `filters` (what the statement was
    built from) and `estimate_ttl`, a total past the cap is not counted again for that
    long (`known_estimate`).
    """
    paged = statement.limit(page.limit).offset(page.offset)
    known = known_estimate(filters, estimate_ttl)
    if known is not None:
        return (await session.execute(paged)).all(), known
    counted = statement if counted is None else counted
    rows = (await session.execute(paged.add_columns(capped_total(counted)))).all()
    total = await page_total(session, counted, page, rows)
    if filters is not None:
        keep_estimate(filters, total)
    return rows, total


def forget_estimates() -> None:
    """Every list counts afresh (for tests that change the cap)."""
    _estimates.clear()


async def page_total(
    executor: Executor, counted: AnySelect, page: PageParams, rows: Sequence[AnyRow]
) -> int:
    """The total of a page fetched with `capped_total` beside each row: from its first row,
    or counted apart for a page past the end (none on the first page: there is nothing)."""
    if rows:
        return await settle_count(executor, counted, rows[0].total)
    if page.offset == 0:
        return 0
    return await settle_count(executor, counted, None)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    count: int
    next: str | None
    previous: str | None
    results: list[T]


def make_page(request: Request, page: PageParams, count: int, results: list[T]) -> Page[T]:
    next_url = None
    if page.offset + page.limit < count and page.offset + page.limit <= MAX_OFFSET:
        next_url = _page_url(request, page.limit, page.offset + page.limit)
    previous_url = None
    if page.offset > 0:
        previous_url = _page_url(request, page.limit, max(page.offset - page.limit, 0))
    return Page[T](count=count, next=next_url, previous=previous_url, results=results)


_PAGING = frozenset({"limit", "offset"})


def _page_url(request: Request, limit: int, offset: int) -> str:
    """The request's URL for another page: its query with `limit` and `offset` set, last (as
    Starlette's `URL.include_query_params` writes it, from the query already parsed)."""
    kept = [item for item in request.query_params.multi_items() if item[0] not in _PAGING]
    query = urlencode([*kept, ("limit", str(limit)), ("offset", str(offset))])
    return f"{str(request.url).partition('?')[0]}?{query}"
