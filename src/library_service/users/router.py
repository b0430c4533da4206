from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, status
from fastapi.responses import HTMLResponse

from library_service.core.errors import AppError, error_responses
from library_service.core.pagination import Page, PageDep, make_page
from library_service.services import ServicesDep, UserServiceDep
from library_service.users.dependencies import CurrentUser, OptionalUser, StaffUser
from library_service.users.password_page import PAGE_PATH, page, password_problem
from library_service.users.schemas import (
    AccessToken,
    MemberFilters,
    MemberPatch,
    MemberRead,
    PasswordResetAccepted,
    PasswordResetConfirm,
    PasswordResetRequest,
    RefreshRequest,
    TokenPair,
    TokenRequest,
    UserCreate,
    UserPatch,
    UserRead,
    UserUpdate,
)
from library_service.web.params import CleanStr, IdPath
from library_service.web.routing import domain_router

router = domain_router("users")

LINK_REFUSED = "This link does not work"
RESET_ACCEPTED = (
    "If an account has this address, a link to choose a new password is on its way; it works once."
)


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    operation_id="users_register",
    responses=error_responses(400, 413),
)
async def register(data: UserCreate, caller: OptionalUser, service: UserServiceDep) -> UserRead:
    """Register a member account (staff may enrol one without a password: the member is
    e-mailed a link to choose it)."""
    staff = caller is not None and caller.is_staff
    return UserRead.model_validate(await service.register(data, enrolled_by_staff=staff))


@router.post(
    "/password-reset/",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="users_password_reset",
    responses=error_responses(413, 429),
)
async def request_password_reset(
    request: Request, data: PasswordResetRequest, service: UserServiceDep
) -> PasswordResetAccepted:
    """E-mail a link to choose a new password (the same answer whether or not the account
    exists)."""
    client_ip = request.client.host if request.client else "unknown"
    await service.request_password_reset(data.email, client_ip=client_ip)
    return PasswordResetAccepted(detail=RESET_ACCEPTED)


@router.post(
    "/password-reset/confirm/",
    operation_id="users_password_reset_confirm",
    responses=error_responses(400, 413),
)
async def confirm_password_reset(
    data: PasswordResetConfirm, service: UserServiceDep
) -> PasswordResetAccepted:
    """Set a new password with the token of an e-mailed link; every earlier token ends."""
    await service.reset_password(data.token, data.password)
    return PasswordResetAccepted(detail="Your password is set: sign in with it.")


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


# -- the page a password link opens (without FRONTEND_URL) -----------------------------------

# Plain routes: the page's form posts form fields, not JSON.
pages = APIRouter(include_in_schema=False)


@pages.get(PAGE_PATH.removeprefix("/api/users"))
async def password_page(
    services: ServicesDep,
    service: UserServiceDep,
    token: Annotated[str, Query(max_length=256)] = "",
) -> HTMLResponse:
    library = services.settings.LIBRARY_NAME
    try:
        await service.check_password_token(token)
    except AppError as refusal:
        return page(library, heading=LINK_REFUSED, error=refusal.message, status_code=400)
    return page(library, token=token)


@pages.post(PAGE_PATH.removeprefix("/api/users"))
async def set_password_from_page(
    services: ServicesDep,
    service: UserServiceDep,
    token: Annotated[str, Form(max_length=256)],
    password: Annotated[str, Form(max_length=1024)],
    again: Annotated[str, Form(max_length=1024)],
) -> HTMLResponse:
    library = services.settings.LIBRARY_NAME
    problem = password_problem(password, again)
    if problem is not None:
        return page(library, token=token, error=problem, status_code=400)
    try:
        user = await service.reset_password(token, password)
    except AppError as refusal:
        return page(library, heading=LINK_REFUSED, error=refusal.message, status_code=400)
    done = f"Sign in as {user.email} with your new password."
    return page(library, heading="Your password is set", done=done)


router.include_router(pages)
