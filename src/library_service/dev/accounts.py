"""Account and catalogue set-up used by the CLI (create-admin, seed-demo, the first run)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pydantic import ValidationError
from sqlalchemy import func, select

from library_service.core.config import Settings
from library_service.core.db import Database, UnitOfWork
from library_service.dev.seed import seed_books
from library_service.models import User
from library_service.users.repository import UserRepository
from library_service.users.schemas import UserCreate
from library_service.users.security import hash_password, verify_password
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
            user.token_version += 1  # tokens issued under the old password end
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


async def demo_logins_in_use(
    settings: Settings, logins: Sequence[tuple[str, str, str]]
) -> list[tuple[str, str, str]]:
    """The (role, email, password) logins whose account is active and still has that
    password; the role as the account has it now."""
    emails = [email.lower() for _, email, _ in logins]
    db = Database.connect(settings.DATABASE_URL, settings, pool_size=1)
    try:
        async with UnitOfWork(db).read() as session:
            rows = await session.execute(
                select(
                    func.lower(User.email).label("email"), User.hashed_password, User.is_staff
                ).where(func.lower(User.email).in_(emails), User.is_active)
            )
            accounts = {row.email: (row.hashed_password, row.is_staff) for row in rows}
    finally:
        await db.dispose()
    candidates = [
        (email.lower(), password) for _, email, password in logins if email.lower() in accounts
    ]
    # bcrypt takes a quarter of a second per check at the default cost: check side by side.
    valid = await asyncio.gather(
        *(verify_password(password, accounts[email][0], settings) for email, password in candidates)
    )
    return [
        ("staff" if accounts[email][1] else "member", email, password)
        for (email, password), ok in zip(candidates, valid, strict=True)
        if ok
    ]
