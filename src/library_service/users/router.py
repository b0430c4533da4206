from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request, status

from library_service.core.dependencies import SettingsDep, UnitOfWorkDep, get_queue
from library_service.core.errors import error_responses
from library_service.core.pagination import Page, PageDep, make_page
from library_service.core.params import CleanStr, IdPath
from library_service.core.ratelimit import LoginThrottle
from library_service.core.routing import domain_router
from library_service.users.dependencies import CurrentUser, StaffUser
from library_service.users.schemas import (
    AccessToken,
    MemberFilters,
    MemberPatch,
    MemberRead,
    RefreshRequest,
    TokenPair,
    TokenRequest,
    UserCreate,
    UserPatch,
    UserRead,
    UserUpdate,
)
from library_service.users.service import UserService

router = domain_router("users")


async def get_user_service(
    request: Request,
    uow: UnitOfWorkDep,
    settings: SettingsDep,
    queue: Annotated[Any, Depends(get_queue)],
) -> UserService:
    throttle = LoginThrottle.for_app(request.app.state, queue)
    return UserService(uow, settings=settings, throttle=throttle)


UserServiceDep = Annotated[UserService, Depends(get_user_service)]


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    operation_id="users_register",
    responses=error_responses(400, 413),
)
async def register(data: UserCreate, service: UserServiceDep) -> UserRead:
    """Register a member account."""
    return UserRead.model_validate(await service.register(data))


@router.post("/token/", operation_id="users_token", responses=error_responses(401, 413, 429))
async def obtain_tokens(request: Request, data: TokenRequest, service: UserServiceDep) -> TokenPair:
    """Exchange email and password for an access and a refresh token."""
    client_ip = request.client.host if request.client else "unknown"
    return await service.obtain_tokens(data.email, data.password, client_ip=client_ip)


@router.post(
    "/token/refresh/", operation_id="users_token_refresh", responses=error_responses(401, 413)
)
async def refresh_access_token(data: RefreshRequest, service: UserServiceDep) -> AccessToken:
    """Exchange a refresh token for a new access token."""
    return await service.refresh_access(data.refresh)


@router.get("/me/", operation_id="users_me_read", responses=error_responses(401))
async def read_profile(user: CurrentUser, service: UserServiceDep) -> UserRead:
    """Your own profile."""
    return UserRead.model_validate(await service.get_profile(user.id))


@router.put("/me/", operation_id="users_me_replace", responses=error_responses(400, 401, 413))
async def replace_profile(data: UserUpdate, user: CurrentUser, service: UserServiceDep) -> UserRead:
    """Update your email, names and (optionally) password."""
    return UserRead.model_validate(await service.update_profile(user.id, data))


@router.patch("/me/", operation_id="users_me_update", responses=error_responses(400, 401, 413))
async def update_profile(data: UserPatch, user: CurrentUser, service: UserServiceDep) -> UserRead:
    """Change some of your profile fields."""
    return UserRead.model_validate(await service.update_profile(user.id, data))


# -- member management (staff) -------------------------------------------------------------


# Staff manage the accounts. `{user_id:digits}` matches numeric ids only, so `me/` and `token/`
# stay routes of their own (a GET of `token/` answers 405, not 422).


@router.get("/", operation_id="users_list", responses=error_responses(401, 403))
async def list_members(
    request: Request,
    _: StaffUser,
    service: UserServiceDep,
    page: PageDep,
    search: Annotated[
        CleanStr | None, Query(max_length=100, description="In email, first or last name.")
    ] = None,
    is_active: Annotated[bool | None, Query(description="false: deactivated accounts.")] = None,
    is_staff: Annotated[bool | None, Query(description="true: library staff.")] = None,
) -> Page[MemberRead]:
    """Every user account, oldest first (staff)."""
    filters = MemberFilters(search=search, is_active=is_active, is_staff=is_staff)
    users, count = await service.list_members(filters, page)
    return make_page(request, page, count, [MemberRead.model_validate(u) for u in users])


@router.get(
    "/{user_id:digits}/", operation_id="users_read", responses=error_responses(401, 403, 404)
)
async def read_member(user_id: IdPath, _: StaffUser, service: UserServiceDep) -> MemberRead:
    """One user account (staff)."""
    return MemberRead.model_validate(await service.get_profile(user_id))


@router.patch(
    "/{user_id:digits}/",
    operation_id="users_update",
    responses=error_responses(400, 401, 403, 404, 413),
)
async def update_member(
    user_id: IdPath, data: MemberPatch, staff: StaffUser, service: UserServiceDep
) -> MemberRead:
    """Deactivate or reactivate an account, grant or revoke staff, or correct names (staff)."""
    return MemberRead.model_validate(await service.update_member(staff, user_id, data))
