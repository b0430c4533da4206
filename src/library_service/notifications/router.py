"""The member's notices in the app: every notice, e-mailed or not."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request

from library_service.core.errors import error_responses
from library_service.core.pagination import Page, PageDep, make_page
from library_service.notifications.schemas import MarkedRead, NoticeRead, UnreadCount
from library_service.services import NoticeServiceDep, ServicesDep
from library_service.users.dependencies import CurrentUser
from library_service.web.dependencies import request_base_url
from library_service.web.params import IdPath
from library_service.web.routing import domain_router

router = domain_router("notices")


@router.get("/", operation_id="notices_list", responses=error_responses(401))
async def list_notices(
    request: Request,
    user: CurrentUser,
    services: ServicesDep,
    service: NoticeServiceDep,
    page: PageDep,
    unread: Annotated[bool, Query(description="true: only those not read yet.")] = False,
) -> Page[NoticeRead]:
    """Your notices, newest first."""
    notices, count = await service.list(user.id, unread=unread, page=page)
    base = request_base_url(request)
    results = [NoticeRead.of(n, services.settings, base_url=base) for n in notices]
    return make_page(request, page, count, results)


@router.get("/unread-count/", operation_id="notices_unread_count", responses=error_responses(401))
async def unread_count(user: CurrentUser, service: NoticeServiceDep) -> UnreadCount:
    """How many of your notices are unread (cheap enough to poll)."""
    return UnreadCount(unread=await service.unread_count(user.id))


@router.post("/{notice_id}/read/", operation_id="notices_read", responses=error_responses(401, 404))
async def mark_read(
    request: Request,
    notice_id: IdPath,
    user: CurrentUser,
    services: ServicesDep,
    service: NoticeServiceDep,
) -> NoticeRead:
    """Mark one of your notices read."""
    notice = await service.mark_read(user.id, notice_id)
    return NoticeRead.of(notice, services.settings, base_url=request_base_url(request))


@router.post("/read-all/", operation_id="notices_read_all", responses=error_responses(401))
async def mark_all_read(user: CurrentUser, service: NoticeServiceDep) -> MarkedRead:
    """Mark all your notices read; how many were unread."""
    return MarkedRead(marked=await service.mark_all_read(user.id))
