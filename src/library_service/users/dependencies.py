"""Who is calling: bearer token → active user; staff-only guard."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from library_service.core.errors import AuthenticationError, PermissionDeniedError
from library_service.users.errors import TokenNotValidError
from library_service.users.repository import active_auth_user
from library_service.users.schemas import AuthUser
from library_service.users.security import InvalidTokenError, decode_token
from library_service.web.dependencies import SettingsDep, UnitOfWorkDep
from library_service.web.idempotency import idempotent

# Declares the scheme in OpenAPI, so Swagger UI's Authorize button takes a pasted token.
_bearer = HTTPBearer(
    auto_error=False,
    description="Paste an access token from POST /api/users/token/ (without 'Bearer').",
)


def _bearer_token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    if credentials is not None:
        return credentials.credentials
    # `Authorize: Bearer …` is accepted too: a habit of browser header-editing extensions.
    alias = request.headers.get("authorize", "")
    scheme, _, token = alias.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _missing_credentials(request: Request) -> str | None:
    """What to tell a client whose headers hold no bearer token, when it sent something:
    a bare token (or another scheme) lacks the scheme; `Bearer` alone lacks the token."""
    for name in ("Authorization", "Authorize"):
        scheme, _, rest = request.headers.get(name, "").strip().partition(" ")
        if not scheme:
            continue
        if scheme.lower() == "bearer" and not rest.strip():
            return f"The {name} header names the Bearer scheme but holds no token."
        if scheme.lower() != "bearer":
            return (
                f"The {name} header lacks the Bearer scheme: "
                "send `Authorization: Bearer <access token>`."
            )
    return None


async def get_current_user(
    request: Request,
    uow: UnitOfWorkDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AuthUser:
    token = _bearer_token(request, credentials)
    if token is None:
        raise AuthenticationError(_missing_credentials(request))
    try:
        claims = decode_token(token, "access", settings)
    except InvalidTokenError as exc:
        raise TokenNotValidError("The access token is invalid or expired.") from exc
    # A read phase of its own: the connection goes back to the pool at once instead of
    # being held beside the endpoint's own work.
    async with uow.read_rows() as connection:
        user = await active_auth_user(connection, claims.user_id, token_version=claims.version)
    if user is None:
        raise TokenNotValidError("The user is inactive or deleted, or the token was revoked.")
    return user


async def get_optional_user(
    request: Request,
    uow: UnitOfWorkDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AuthUser | None:
    """The caller when a token is sent (and checked as for any route); None without one."""
    if _bearer_token(request, credentials) is None:
        return None
    return await get_current_user(request, uow, settings, credentials)


async def require_staff(user: Annotated[AuthUser, Depends(get_current_user)]) -> AuthUser:
    if not user.is_staff:
        raise PermissionDeniedError("Only library staff may do this.")
    return user


CurrentUser = Annotated[AuthUser, Depends(get_current_user)]
StaffUser = Annotated[AuthUser, Depends(require_staff)]
OptionalUser = Annotated[AuthUser | None, Depends(get_optional_user)]


async def current_user_id(user: CurrentUser) -> int:
    return user.id


# A write route's Idempotency-Key, which belongs to the authenticated user: for a write
# route, `dependencies=[Idempotent], responses=IDEMPOTENT_RESPONSES`.
Idempotent = idempotent(current_user_id)
