from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Query, Request

from library_service.audit.schemas import AuditEntryRead, AuditFilters
from library_service.core.audit import AuditAction, AuditTarget
from library_service.core.errors import error_responses
from library_service.core.pagination import Page, PageDep, make_page
from library_service.services import AuditServiceDep
from library_service.users.dependencies import StaffUser
from library_service.web.params import MAX_ID
from library_service.web.routing import domain_router

router = domain_router("audit")

IdFilter = Annotated[int | None, Query(ge=1, le=MAX_ID)]


@router.get("/", operation_id="audit_list", responses=error_responses(400, 401, 403))
async def list_audit_entries(
    request: Request,
    _: StaffUser,
    service: AuditServiceDep,
    page: PageDep,
    actor_id: IdFilter = None,
    action: AuditAction | None = None,
    target_type: AuditTarget | None = None,
    target_id: IdFilter = None,
    member_id: IdFilter = None,
    book_id: IdFilter = None,
    since: Annotated[date | None, Query(description="From this library date on.")] = None,
    until: Annotated[date | None, Query(description="Up to this library date, included.")] = None,
) -> Page[AuditEntryRead]:
    """Every staff action, newest first (staff): by actor, target, action, member, book, dates."""
    filters = AuditFilters(
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        member_id=member_id,
        book_id=book_id,
        since=since,
        until=until,
    )
    rows, count = await service.list_entries(filters, page)
    return make_page(request, page, count, [AuditEntryRead.model_validate(r) for r in rows])
