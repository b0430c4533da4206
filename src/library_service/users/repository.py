from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.core.db import Executor
from library_service.core.pagination import PageParams, fetch_page
from library_service.core.search import member_search
from library_service.models import PasswordToken, User, table_of
from library_service.users.schemas import AuthUser, MemberFilters

# Built once: every authenticated request runs it (see core/db.py).
# Every authenticated request's statement: on the table, so the session runs it as plain
# Core (see core/db.py).
_users = table_of(User).c
_ACTIVE_AUTH_USER = select(_users.id, _users.email, _users.is_staff).where(
    _users.id == bindparam("user_id"),
    _users.is_active.is_(True),
    _users.token_version == bindparam("token_version"),
)


async def active_auth_user(
    executor: Executor, user_id: int, *, token_version: int
) -> AuthUser | None:
    """The user a token names, if they are active and the token is of their current version
    (a password change since it was issued ends it)."""
    parameters = {"user_id": user_id, "token_version": token_version}
    row = (await executor.execute(_ACTIVE_AUTH_USER, parameters)).first()
    return AuthUser(id=row.id, email=row.email, is_staff=row.is_staff) if row else None


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: int, *, for_update: bool = False) -> User | None:
        if not for_update:
            return await self.session.get(User, user_id)
        statement = select(User).where(User.id == user_id).with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def list(
        self, filters: MemberFilters, page: PageParams, *, estimate_ttl: float = 0
    ) -> tuple[Sequence[User], int]:
        """One page of users, oldest account first, and the number of matches (a count past
        the cap, an estimate, is reused for `estimate_ttl` seconds: core/pagination.py)."""
        conditions = []
        if filters.search:
            conditions.append(member_search(filters.search))
        if filters.is_active is not None:
            conditions.append(User.is_active.is_(filters.is_active))
        if filters.is_staff is not None:
            conditions.append(User.is_staff.is_(filters.is_staff))
        statement = select(User).where(*conditions).order_by(User.id)
        rows, total = await fetch_page(
            self.session, statement, page, filters=filters, estimate_ttl=estimate_ttl
        )
        return [row.User for row in rows], total

    async def lock_active_staff(self) -> Sequence[int]:
        """Lock every active staff account, in id order, and return their ids.

        Whoever takes staff access away holds these locks first, so two such changes run
        one after the other, and the second sees the first one's result: a row that stopped
        being active staff meanwhile is left out (PostgreSQL re-checks the condition on
        the row's new version once its lock is released).
        """
        statement = (
            select(User.id)
            .where(User.is_staff.is_(True), User.is_active.is_(True))
            .order_by(User.id)
            .with_for_update()
        )
        return (await self.session.scalars(statement)).all()

    async def get_by_email(self, email: str) -> User | None:
        statement = select(User).where(func.lower(User.email) == email.lower())
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def email_taken(self, email: str, *, except_user_id: int | None = None) -> bool:
        statement = select(User.id).where(func.lower(User.email) == email.lower())
        if except_user_id is not None:
            statement = statement.where(User.id != except_user_id)
        return (await self.session.execute(statement.limit(1))).first() is not None

    async def get_active_auth_user(self, user_id: int, *, token_version: int) -> AuthUser | None:
        return await active_auth_user(self.session, user_id, token_version=token_version)

    async def add_password_token(self, token: PasswordToken) -> None:
        self.session.add(token)
        await self.session.flush()

    async def password_token(
        self, token_hash: str, *, for_update: bool = False
    ) -> PasswordToken | None:
        statement = select(PasswordToken).where(PasswordToken.token_hash == token_hash)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def add(self, user: User) -> User:
        self.session.add(user)
        await self.session.flush()
        return user
