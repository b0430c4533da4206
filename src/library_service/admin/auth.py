"""Who gets into the admin: staff, signed in with their API email and password.

- Sign-in runs UserService.staff_login: the API's bcrypt check and its login limit (per
  client address and per email). A member or a deactivated account is refused with a
  sentence that says so, once the password was right.
- The session is Starlette's signed cookie (SECRET_KEY): HttpOnly, SameSite=Lax, Secure in
  production, path /admin, renewed on each request and void after SESSION_IDLE_SECONDS
  without one; SESSION_MAX_SECONDS after sign-in it ends whatever happens. It holds the
  user's id, their token version and the sign-in time, nothing else.
- Every request checks the user again, with the same one-row query the API's bearer
  authentication makes: a staff member deactivated, demoted or whose password changed
  meanwhile is sent to the sign-in page at their next request.
- Forms that change data carry starlette-admin's CSRF token (a signed double-submit
  cookie); on top of it, SameOriginMiddleware refuses a state-changing request whose
  Origin header names another site.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette_admin.auth import AdminUser, AuthProvider
from starlette_admin.exceptions import LoginFailed

from library_service.admin.desk import Desk
from library_service.core import clock
from library_service.core.errors import AppError, RateLimitedError
from library_service.users.schemas import AuthUser

SESSION_COOKIE = "library_admin_session"
SESSION_IDLE_SECONDS = 2 * 60 * 60
SESSION_MAX_SECONDS = 12 * 60 * 60
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


@dataclass
class StaffAdminUser(AdminUser):
    """The signed-in staff member, as starlette-admin shows them and the views act as."""

    staff: AuthUser | None = None


class StaffAuthProvider(AuthProvider):
    def __init__(self, desk: Desk) -> None:
        super().__init__(login_path="/login", logout_path="/logout")
        self.desk = desk

    async def login(
        self, username: str, password: str, remember_me: bool, request: Request
    ) -> Response | None:
        client_ip = request.client.host if request.client else "unknown"
        try:
            user = await self.desk.users().staff_login(
                username.strip(), password, client_ip=client_ip
            )
        except RateLimitedError as exc:
            retry_after = (exc.headers or {}).get("Retry-After", "60")
            raise LoginFailed(
                f"Too many failed sign-ins; try again in {retry_after} seconds."
            ) from exc
        except AppError as exc:  # wrong password, a member, a deactivated account
            raise LoginFailed(exc.message) from exc
        request.session.clear()
        request.session.update(
            user_id=user.id, version=user.token_version, since=int(clock.now().timestamp())
        )
        return None

    async def logout(self, request: Request) -> Response | None:
        request.session.clear()
        return None

    async def authenticate(self, request: Request) -> AdminUser | None:
        if _relative_path(request).startswith("/static/"):
            return None  # stylesheets and scripts: served to anyone, no query
        session = request.session
        user_id, version, since = (session.get(key) for key in ("user_id", "version", "since"))
        if not (isinstance(user_id, int) and isinstance(version, int)):
            return None
        if not isinstance(since, int) or clock.now().timestamp() - since > SESSION_MAX_SECONDS:
            session.clear()
            return None
        staff = await self.desk.users().staff_session_user(user_id, token_version=version)
        if staff is None:  # deactivated, demoted or a new password since signing in
            session.clear()
            return None
        return StaffAdminUser(username=staff.email, staff=staff)


def _relative_path(request: Request) -> str:
    """The path below the admin's mount point."""
    root: str = request.scope.get("root_path", "")
    path: str = request.scope["path"]
    return path[len(root) :] if path.startswith(root) else path


class SameOriginMiddleware:
    """Refuse a state-changing request that a page of another site sent (its Origin header
    names another host); the CSRF token is checked after this."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            request = Request(scope)
            origin = request.headers.get("origin")
            if origin is not None and urlsplit(origin).netloc != request.url.netloc:
                response = PlainTextResponse(
                    "Cross-site request refused: this form was not sent from the admin's "
                    "own pages.",
                    status_code=403,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
