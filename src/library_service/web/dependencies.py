"""Request-scoped dependencies shared by every domain: settings, the unit of work, the queue.

Dependencies are `async def` even when they only read app state: FastAPI runs plain `def`
dependencies in its thread pool, which costs a thread hop on every request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.core.config import Settings
from library_service.core.db import BeforeCommitHooks, Database, UnitOfWork

if TYPE_CHECKING:
    from arq.connections import ArqRedis


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_queue(request: Request) -> ArqRedis | None:
    queue: ArqRedis | None = request.app.state.queue
    return queue


_BEFORE_COMMIT = "library_service.before_commit"


def before_commit_hooks(request: Request) -> BeforeCommitHooks:
    """The request's hooks for its write phases: one list per request, shared by every
    unit of work made for it, whichever dependency made it."""
    hooks: BeforeCommitHooks = request.scope.setdefault(_BEFORE_COMMIT, [])
    return hooks


def add_before_commit(request: Request, hook: Callable[[AsyncSession], Awaitable[None]]) -> None:
    before_commit_hooks(request).append(hook)


def unit_of_work_for(request: Request) -> UnitOfWork:
    """The request's way to the database; services commit through it before responding."""
    return UnitOfWork(
        request.app.state.db, request.app.state.queue, before_commit=before_commit_hooks(request)
    )


async def get_unit_of_work(request: Request) -> UnitOfWork:
    return unit_of_work_for(request)


def request_base_url(request: Request) -> str:
    """The API's address as this request reached it (checkout links without PUBLIC_BASE_URL)."""
    return str(request.base_url)


SettingsDep = Annotated[Settings, Depends(get_settings)]
UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_unit_of_work)]
