from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, status

from library_service.core.errors import error_responses
from library_service.core.pagination import Page, PageDep, make_page
from library_service.holds.schemas import HoldCreate, HoldFilters, HoldRead
from library_service.models import HoldStatus
from library_service.services import HoldServiceDep
from library_service.users.dependencies import CurrentUser
from library_service.web.params import MAX_ID, IdPath, UserIdFilter
from library_service.web.routing import domain_router

router = domain_router("holds")


@router.get("/", operation_id="holds_list", responses=error_responses(401))
async def list_holds(
    request: Request,
    user: CurrentUser,
    service: HoldServiceDep,
    page: PageDep,
    user_id: UserIdFilter = None,
    book_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: HoldStatus | None = None,
) -> Page[HoldRead]:
    """Your holds (staff: everyone's, optionally one user's), newest first."""
    filters = HoldFilters(user_id=user_id, book_id=book_id, status=status)
    holds, count = await service.list_holds(user, filters, page)
    return make_page(request, page, count, [HoldRead.model_validate(h) for h in holds])


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    operation_id="holds_create",
    responses=error_responses(400, 401, 404, 413),
)
async def place_hold(data: HoldCreate, user: CurrentUser, service: HoldServiceDep) -> HoldRead:
    """Join the queue for a book with no copy on the shelf; the next freed copy is yours."""
    return HoldRead.model_validate(await service.place(user, data.book))


@router.get("/{hold_id}/", operation_id="holds_read", responses=error_responses(401, 404))
async def read_hold(hold_id: IdPath, user: CurrentUser, service: HoldServiceDep) -> HoldRead:
    """One of your holds (staff: any)."""
    return HoldRead.model_validate(await service.get_hold(hold_id, user))


@router.post(
    "/{hold_id}/cancel/", operation_id="holds_cancel", responses=error_responses(400, 401, 404)
)
async def cancel_hold(hold_id: IdPath, user: CurrentUser, service: HoldServiceDep) -> HoldRead:
    """Leave the queue; a copy put aside for you goes to the next member."""
    return HoldRead.model_validate(await service.cancel(hold_id, user))
