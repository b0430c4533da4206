"""Account and catalogue set-up used by the CLI (create-admin, seed-demo, the first run)."""

from __future__ import annotations

from pydantic import ValidationError

from library_service.core.config import Settings
from library_service.core.db import Database, UnitOfWork
from library_service.core.security import hash_password
from library_service.dev.seed import seed_books
from library_service.users.repository import UserRepository
from library_service.users.schemas import UserCreate
from library_service.users.service import UserService


async def ensure_user(settings: Settings, email: str, password: str, *, is_staff: bool) -> bool:
    """Create the user, or update an existing one's password and role; True if created."""
    try:
        data = UserCreate(email=email, password=password)
    except ValidationError as exc:
        raise ValueError("; ".join(error["msg"] for error in exc.errors())) from exc
    db = Database.connect(settings.DATABASE_URL, settings, pool_size=1)
    try:
        uow = UnitOfWork(db)
        async with uow.read() as session:
            existing = await UserRepository(session).get_by_email(data.email)
        if existing is None:
            await UserService(uow, settings=settings).register(data, is_staff=is_staff)
            return True
        hashed = await hash_password(password, settings)
        async with uow.write() as session:
            user = await UserRepository(session).get(existing.id)
            assert user is not None
            user.hashed_password = hashed
            user.is_staff = is_staff or user.is_staff
            user.is_active = True
        return False
    finally:
        await db.dispose()


async def seed_catalogue(settings: Settings) -> int:
    db = Database.connect(settings.DATABASE_URL, settings, pool_size=1)
    try:
        async with UnitOfWork(db).write() as session:
            return await seed_books(session)
    finally:
        await db.dispose()
