"""Builds the admin and mounts it on the API application."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount
from starlette.status import HTTP_303_SEE_OTHER
from starlette_admin.contrib.sqla import Admin
from starlette_admin.helpers import detail_url
from starlette_admin.i18n import TimezoneConfig
from starlette_admin.routing import route

from library_service.admin.auth import (
    SESSION_COOKIE,
    SESSION_IDLE_SECONDS,
    SameOriginMiddleware,
    StaffAuthProvider,
)
from library_service.admin.desk import ADMIN_PATH, Desk
from library_service.admin.views.activity import ACTION_LABELS, TARGET_VIEWS, ActivityView
from library_service.admin.views.books import BookView
from library_service.admin.views.checkout import CheckoutView
from library_service.admin.views.circulation import BorrowingView, PaymentView, loan_state
from library_service.admin.views.holds import HoldView
from library_service.admin.views.members import MemberView
from library_service.admin.views.messages import MemberNoticeView, StaffMessageView
from library_service.admin.views.start import StartView
from library_service.core import clock
from library_service.core.config import Settings

TEMPLATES = Path(__file__).parent / "templates"


class _ReadSessions(async_sessionmaker[AsyncSession]):
    """starlette-admin's session per request, for its list and detail reads: a session on
    the API's autocommit engine (as UnitOfWork.read() opens), which exists only once the
    application's lifespan has started."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__(expire_on_commit=False)
        self._app = app

    def __call__(self, **local_kw: Any) -> AsyncSession:
        return self._app.state.db.autocommit_sessionmaker(**local_kw)  # type: ignore[no-any-return]


class _PersonsMistake(logging.Filter):
    """starlette-admin logs a WARNING for what a person did: a sign-in redirect, a form that
    failed validation, a row not found. Those are INFO: no operator has anything to do."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING:
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        return True


def _log_peoples_mistakes_as_info() -> None:
    # A logger's filters see only its own records, not its children's: each module's logger
    # (all made when starlette_admin is imported, as above) gets the filter.
    names = [name for name in logging.root.manager.loggerDict if name.startswith("starlette_admin")]
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _PersonsMistake) for f in logger.filters):
            logger.addFilter(_PersonsMistake())


class DeskAdmin(Admin):
    """starlette-admin's Admin, but a row just added with the plain Save button is shown
    on its own page (starlette-admin goes back to the list, where a new book may sit on
    another page of the catalogue)."""

    @route("/{key}/create", methods=["GET", "POST"], name="create")
    async def _render_create(self, request: Request) -> Response:
        response: Response = await super()._render_create(request)
        created = getattr(request.state, "created_pk", None)
        if created is None or response.status_code != HTTP_303_SEE_OTHER:
            return response
        form = await request.form()
        if "_continue_editing" in form or "_add_another" in form:
            return response
        key = request.path_params["key"]
        return RedirectResponse(detail_url(request, key, created), status_code=HTTP_303_SEE_OTHER)


def install_admin(app: FastAPI, settings: Settings) -> None:
    """Serve the admin at /admin, in the API's own process."""
    # starlette-admin logs every page it renders at INFO; the API's access log has them.
    logging.getLogger("starlette_admin").setLevel(logging.WARNING)
    _log_peoples_mistakes_as_info()
    desk = Desk(app)
    admin = DeskAdmin(
        _ReadSessions(app),
        title="Library desk",
        base_url=ADMIN_PATH,
        index_view=StartView(desk),
        timezone_config=TimezoneConfig(default_timezone=settings.LIBRARY_TIMEZONE),
        templates_dir=str(TEMPLATES),
        auth_provider=StaffAuthProvider(desk),
        secret_key=settings.SECRET_KEY,
        middlewares=[
            Middleware(SameOriginMiddleware),
            Middleware(
                SessionMiddleware,
                secret_key=settings.SECRET_KEY,
                session_cookie=SESSION_COOKIE,
                max_age=SESSION_IDLE_SECONDS,
                path=ADMIN_PATH,
                same_site="lax",
                https_only=settings.is_production,
            ),
        ],
    )
    for view in (
        CheckoutView(desk),
        BookView(desk),
        MemberView(desk),
        BorrowingView(desk),
        HoldView(desk),
        PaymentView(desk),
        StaffMessageView(desk),
        MemberNoticeView(desk),
        ActivityView(desk),
    ):
        admin.add_view(view)
    admin.templates.env.globals["loan_state"] = lambda borrowing: loan_state(
        borrowing, clock.today(settings.timezone)
    )
    admin.templates.env.globals["timezone"] = settings.timezone
    admin.templates.env.globals["target_views"] = TARGET_VIEWS
    admin.templates.env.globals["action_labels"] = ACTION_LABELS
    admin.mount_to(app)
    # A list page builds a link per row, relation and row action with url_for("admin:…"),
    # which walks the application's routes in order: behind the API's routers each lookup
    # cost about 0.2 ms (a NoMatchFound raised per route), a third of a page's time.
    # First in line, the admin is found at once; no API path starts with /admin.
    routes = app.router.routes
    mount = next(r for r in routes if isinstance(r, Mount) and r.app is admin.app)
    routes.remove(mount)
    routes.insert(0, mount)
