from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request, Response, status

from library_service.books.schemas import (
    BookCreate,
    BookFilters,
    BookOrdering,
    BookPatch,
    BookRead,
)
from library_service.core.db import as_dicts
from library_service.core.errors import error_responses
from library_service.core.pagination import Page, PageDep, make_page
from library_service.services import BookServiceDep
from library_service.users.dependencies import StaffUser
from library_service.web.params import CleanStr, IdPath
from library_service.web.routing import domain_router

router = domain_router("books")


async def book_filters(
    search: Annotated[
        CleanStr | None, Query(max_length=100, description="In title, author or ISBN; any case.")
    ] = None,
    title: Annotated[CleanStr | None, Query(max_length=100, description="Title contains.")] = None,
    author: Annotated[
        CleanStr | None, Query(max_length=100, description="Author contains.")
    ] = None,
    available: Annotated[
        bool | None, Query(description="true: copies on the shelf; false: none left.")
    ] = None,
    withdrawn: Annotated[
        bool, Query(description="true: only the books withdrawn from circulation.")
    ] = False,
    ordering: BookOrdering = "id",
) -> BookFilters:
    return BookFilters(
        search=search,
        title=title,
        author=author,
        available=available,
        withdrawn=withdrawn,
        ordering=ordering,
    )


@router.get("/", operation_id="books_list", responses=error_responses())
async def list_books(
    request: Request,
    service: BookServiceDep,
    filters: Annotated[BookFilters, Depends(book_filters)],
    page: PageDep,
) -> Page[BookRead]:
    """The catalogue, filtered and ordered."""
    rows, count = await service.list_books(filters, page)
    return make_page(request, page, count, [BookRead.model_validate(row) for row in as_dicts(rows)])


@router.get("/{book_id}/", operation_id="books_read", responses=error_responses(404))
async def read_book(book_id: IdPath, service: BookServiceDep) -> BookRead:
    """One book."""
    return BookRead.model_validate(await service.get_book(book_id))


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    operation_id="books_create",
    responses=error_responses(400, 401, 403, 413),
)
async def create_book(data: BookCreate, staff: StaffUser, service: BookServiceDep) -> BookRead:
    """Add a book to the catalogue (staff)."""
    return BookRead.model_validate(await service.create_book(data, staff_id=staff.id))


@router.put(
    "/{book_id}/", operation_id="books_replace", responses=error_responses(400, 401, 403, 404, 413)
)
async def replace_book(
    book_id: IdPath, data: BookCreate, staff: StaffUser, service: BookServiceDep
) -> BookRead:
    """Replace a book's details (staff)."""
    updated = await service.update_book(book_id, data, staff_id=staff.id)
    return BookRead.model_validate(updated.book)


@router.patch(
    "/{book_id}/", operation_id="books_update", responses=error_responses(400, 401, 403, 404, 413)
)
async def update_book(
    book_id: IdPath, data: BookPatch, staff: StaffUser, service: BookServiceDep
) -> BookRead:
    """Change some of a book's details (staff)."""
    updated = await service.update_book(book_id, data, staff_id=staff.id)
    return BookRead.model_validate(updated.book)


@router.delete(
    "/{book_id}/",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="books_delete",
    responses=error_responses(400, 401, 403, 404),
)
async def delete_book(book_id: IdPath, staff: StaffUser, service: BookServiceDep) -> Response:
    """Remove a book that has never been borrowed (staff)."""
    await service.delete_book(book_id, staff_id=staff.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
