"""Limit/offset pagination with the `{count, next, previous, results}` envelope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel

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
