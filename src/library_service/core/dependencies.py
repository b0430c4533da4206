"""Request-scoped dependencies shared by every domain: settings, the unit of work, the queue.

Dependencies are `async def` even when they only read app state: FastAPI runs plain `def`
dependencies in its thread pool, which costs a thread hop on every request."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from library_service.core.config import Settings
from library_service.core.db import Database, UnitOfWork

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


async def get_unit_of_work(request: Request) -> UnitOfWork:
    """The request's way to the database; services commit through it before responding."""
    return UnitOfWork(request.app.state.db, request.app.state.queue)


SettingsDep = Annotated[Settings, Depends(get_settings)]
UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_unit_of_work)]
