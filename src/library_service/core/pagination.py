"""Limit/offset pagination with the `{count, next, previous, results}` envelope."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.core.db import AnyRow, AnySelect

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_OFFSET = 1_000_000_000


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    offset: int


async def page_params(
    limit: Annotated[
        int, Query(ge=1, description=f"Page size; values above {MAX_LIMIT} count as {MAX_LIMIT}.")
    ] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> PageParams:
    return PageParams(limit=min(limit, MAX_LIMIT), offset=offset)


PageDep = Annotated[PageParams, Depends(page_params)]


async def fetch_page(
    session: AsyncSession, statement: AnySelect, page: PageParams
) -> tuple[Sequence[AnyRow], int]:
    """One page of the rows `statement` selects, and how many it selects in all.

    The total comes in the same round trip, as a window count beside each row; only a page
    past the end, with no row to carry it, is counted apart.
    """
    paged = statement.add_columns(func.count().over().label("total"))
    rows = (await session.execute(paged.limit(page.limit).offset(page.offset))).all()
    if rows:
        return rows, rows[0].total
    if page.offset == 0:
        return rows, 0
    counting = statement.with_only_columns(func.count(), maintain_column_froms=True)
    return rows, int(await session.scalar(counting.order_by(None)) or 0)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    count: int
    next: str | None
    previous: str | None
    results: list[T]


def make_page(request: Request, page: PageParams, count: int, results: list[T]) -> Page[T]:
    url = request.url
    next_url = None
    if page.offset + page.limit < count:
        next_url = str(url.include_query_params(limit=page.limit, offset=page.offset + page.limit))
    previous_url = None
    if page.offset > 0:
        previous_offset = max(page.offset - page.limit, 0)
        previous_url = str(url.include_query_params(limit=page.limit, offset=previous_offset))
    return Page[T](count=count, next=next_url, previous=previous_url, results=results)
