from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from library_service.borrowings.repository import BorrowingFilters
from library_service.borrowings.schemas import (
    BookSummary,
    BorrowingCreate,
    BorrowingDetail,
    BorrowingRead,
)
from library_service.borrowings.service import BorrowingService
from library_service.core.db import AnyRow
from library_service.core.dependencies import ReadSessionDep, SessionDep, SettingsDep
from library_service.core.errors import error_responses
from library_service.core.pagination import Page, PageDep, make_page
from library_service.core.params import IdPath, UserIdFilter
from library_service.payments.dependencies import (
    CheckoutUrlsDep,
    PaymentReaderDep,
    PaymentServiceDep,
)
from library_service.users.dependencies import CurrentUser

router = APIRouter(
    prefix="/api/borrowings",
    tags=["borrowings"],
    responses=error_responses(400, 401, 404, 409, 413),
)


async def get_borrowing_service(
    session: SessionDep, settings: SettingsDep, payments: PaymentServiceDep
) -> BorrowingService:
    return BorrowingService(session, settings=settings, payments=payments)


async def get_borrowing_reader(
    session: ReadSessionDep, settings: SettingsDep, payments: PaymentReaderDep
) -> BorrowingService:
    """The service on an autocommit session, for endpoints that only read."""
    return BorrowingService(session, settings=settings, payments=payments)


BorrowingServiceDep = Annotated[BorrowingService, Depends(get_borrowing_service)]
BorrowingReaderDep = Annotated[BorrowingService, Depends(get_borrowing_reader)]


def _list_item(row: AnyRow) -> BorrowingRead:
    return BorrowingRead(
        id=row.id,
        borrow_date=row.borrow_date,
        expected_return_date=row.expected_return_date,
        actual_return_date=row.actual_return_date,
        is_active=row.actual_return_date is None,
        user_id=row.user_id,
        book=BookSummary(
            id=row.book_id,
            title=row.title,
            author=row.author,
            cover=row.cover,
            daily_fee=row.daily_fee,
        ),
    )


@router.get("/")
async def list_borrowings(
    request: Request,
    user: CurrentUser,
    service: BorrowingReaderDep,
    page: PageDep,
    is_active: Annotated[bool | None, Query(description="true: not yet returned.")] = None,
    user_id: UserIdFilter = None,
) -> Page[BorrowingRead]:
    """Your borrowings (staff: everyone's, optionally one user's), newest first."""
    rows, count = await service.list_borrowings(
        user, BorrowingFilters(user_id=user_id, is_active=is_active), page
    )
    return make_page(request, page, count, [_list_item(row) for row in rows])


@router.post("/", status_code=status.HTTP_201_CREATED)
async def create_borrowing(
    data: BorrowingCreate, user: CurrentUser, service: BorrowingServiceDep, urls: CheckoutUrlsDep
) -> BorrowingDetail:
    """Borrow a book; pay its fee at the returned payment's `session_url`."""
    return BorrowingDetail.model_validate(await service.borrow(user, data, urls))


@router.get("/{borrowing_id}/")
async def read_borrowing(
    borrowing_id: IdPath, user: CurrentUser, service: BorrowingReaderDep
) -> BorrowingDetail:
    """One borrowing with its book and payments."""
    return BorrowingDetail.model_validate(await service.get_borrowing(borrowing_id, user))


@router.post("/{borrowing_id}/return/")
async def return_borrowing(
    borrowing_id: IdPath, user: CurrentUser, service: BorrowingServiceDep, urls: CheckoutUrlsDep
) -> BorrowingDetail:
    """Return the book; a late return adds a FINE payment with its own `session_url`."""
    return BorrowingDetail.model_validate(await service.return_book(borrowing_id, user, urls))
