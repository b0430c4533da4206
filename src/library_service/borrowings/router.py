from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, status

from library_service.borrowings.schemas import (
    BorrowingCreate,
    BorrowingDetail,
    BorrowingExtend,
    BorrowingFilters,
    BorrowingRead,
)
from library_service.core.errors import error_responses
from library_service.core.pagination import Page, PageDep, make_page
from library_service.services import BorrowingServiceDep
from library_service.users.dependencies import CurrentUser, Idempotent
from library_service.web.idempotency import IDEMPOTENT_RESPONSES
from library_service.web.params import IdPath, UserIdFilter
from library_service.web.routing import domain_router

router = domain_router("borrowings")


@router.get("/", operation_id="borrowings_list", responses=error_responses(401))
async def list_borrowings(
    request: Request,
    user: CurrentUser,
    service: BorrowingServiceDep,
    page: PageDep,
    is_active: Annotated[bool | None, Query(description="true: not yet returned.")] = None,
    user_id: UserIdFilter = None,
) -> Page[BorrowingRead]:
    """Your borrowings (staff: everyone's, optionally one user's), newest first."""
    items, count = await service.list_borrowings(
        user, BorrowingFilters(user_id=user_id, is_active=is_active), page
    )
    return make_page(request, page, count, [BorrowingRead.model_validate(i) for i in items])


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    operation_id="borrowings_create",
    dependencies=[Idempotent],
    responses={**error_responses(400, 401, 403, 404, 409, 413), **IDEMPOTENT_RESPONSES},
)
async def create_borrowing(
    data: BorrowingCreate, user: CurrentUser, service: BorrowingServiceDep
) -> BorrowingDetail:
    """Borrow a book; pay its fee at the returned payment's `session_url`."""
    return BorrowingDetail.model_validate(await service.borrow(user, data))


@router.get("/{borrowing_id}/", operation_id="borrowings_read", responses=error_responses(401, 404))
async def read_borrowing(
    borrowing_id: IdPath, user: CurrentUser, service: BorrowingServiceDep
) -> BorrowingDetail:
    """One borrowing with its book and payments."""
    return BorrowingDetail.model_validate(await service.get_borrowing(borrowing_id, user))


@router.post(
    "/{borrowing_id}/extend/",
    operation_id="borrowings_extend",
    dependencies=[Idempotent],
    responses={**error_responses(400, 401, 404, 409, 413), **IDEMPOTENT_RESPONSES},
)
async def extend_borrowing(
    borrowing_id: IdPath, data: BorrowingExtend, user: CurrentUser, service: BorrowingServiceDep
) -> BorrowingDetail:
    """Move the return date later; pay the added days at the new payment's `session_url`."""
    return BorrowingDetail.model_validate(await service.extend(borrowing_id, user, data))


@router.post(
    "/{borrowing_id}/return/",
    operation_id="borrowings_return",
    dependencies=[Idempotent],
    responses={**error_responses(400, 401, 404, 409), **IDEMPOTENT_RESPONSES},
)
async def return_borrowing(
    borrowing_id: IdPath, user: CurrentUser, service: BorrowingServiceDep
) -> BorrowingDetail:
    """Return the book; a late return adds a FINE payment with its own `session_url`."""
    return BorrowingDetail.model_validate(await service.return_book(borrowing_id, user))
