"""Who is calling: bearer token → active user; staff-only guard."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from library_service.core.db import Database
from library_service.core.dependencies import SettingsDep, get_database
from library_service.core.errors import AuthenticationError, PermissionDeniedError
from library_service.core.security import InvalidTokenError, decode_token
from library_service.users.repository import AuthUser, UserRepository

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


async def get_current_user(
    request: Request,
    db: Annotated[Database, Depends(get_database)],
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AuthUser:
    token = _bearer_token(request, credentials)
    if token is None:
        raise AuthenticationError("Authentication credentials were not provided.")
    try:
        claims = decode_token(token, "access", settings)
    except InvalidTokenError as exc:
        raise AuthenticationError(
            "The access token is invalid or expired.", code="token_not_valid"
        ) from exc
    # A short session of its own: the connection goes back to the pool at once instead of
    # being held beside the endpoint's own transaction.
    async with db.autocommit_sessionmaker() as session:
        user = await UserRepository(session).get_active_auth_user(claims.user_id)
    if user is None:
        raise AuthenticationError("The user is inactive or deleted.", code="token_not_valid")
    return user


async def require_staff(user: Annotated[AuthUser, Depends(get_current_user)]) -> AuthUser:
    if not user.is_staff:
        raise PermissionDeniedError("Only library staff may do this.")
    return user


CurrentUser = Annotated[AuthUser, Depends(get_current_user)]
StaffUser = Annotated[AuthUser, Depends(require_staff)]
