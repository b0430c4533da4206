"""Request-scoped dependencies shared by every domain: settings, sessions, the job queue.

Dependencies are `async def` even when they only read app state: FastAPI runs plain `def`
dependencies in its thread pool, which costs a thread hop on every request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.core.config import Settings
from library_service.core.db import Database, unit_of_work

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


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed before the response is sent."""
    async with unit_of_work(request.app.state.db, request.app.state.queue) as session:
        yield session


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for pure reads: autocommit, so no BEGIN/ROLLBACK round trips."""
    db: Database = request.app.state.db
    async with db.autocommit_sessionmaker() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
# scope="function": the commit runs when the endpoint returns, not after the response is sent.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
