from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.core.config import Settings
from library_service.core.db import read_without_transaction, release_connection
from library_service.core.errors import AppError, AuthenticationError, NotFoundError
from library_service.core.ratelimit import LoginThrottle
from library_service.core.security import (
    InvalidTokenError,
    create_token,
    decode_token,
    hash_password,
    verify_password,
)
from library_service.models import User
from library_service.users.repository import UserRepository
from library_service.users.schemas import (
    AccessToken,
    TokenPair,
    UserCreate,
    UserPatch,
    UserUpdate,
)


class EmailTakenError(AppError):
    code = "email_taken"

    def __init__(self) -> None:
        super().__init__("A user with this email already exists.")


class UserService:
    def __init__(
        self, session: AsyncSession, *, settings: Settings, throttle: LoginThrottle | None = None
    ) -> None:
        self.session = session
        self.settings = settings
        self.throttle = throttle or LoginThrottle(None, limit=0, window_seconds=0)
        self.users = UserRepository(session)

    async def register(self, data: UserCreate, *, is_staff: bool = False) -> User:
        await read_without_transaction(self.session)
        if await self.users.email_taken(data.email):
            raise EmailTakenError
        await release_connection(self.session)  # bcrypt is slow; hold no connection meanwhile
        user = User(
            email=data.email,
            hashed_password=await hash_password(data.password, self.settings),
            first_name=data.first_name,
            last_name=data.last_name,
            is_staff=is_staff,
        )
        try:
            return await self.users.add(user)
        except IntegrityError as exc:  # a concurrent registration won the unique index
            raise EmailTakenError from exc

    async def obtain_tokens(self, email: str, password: str, *, client_ip: str) -> TokenPair:
        throttle_keys = self.throttle.keys(client_ip, email)
        await self.throttle.check(throttle_keys)
        await read_without_transaction(self.session)
        user = await self.users.get_by_email(email)
        user_id: int | None = None
        hashed: str | None = None
        if user is not None and user.is_active:
            user_id, hashed = user.id, user.hashed_password
        await release_connection(self.session)  # bcrypt is slow; hold no connection meanwhile
        if not await verify_password(password, hashed, self.settings) or user_id is None:
            await self.throttle.record_failure(throttle_keys)
            raise AuthenticationError(
                "No active account found with the given credentials.", code="invalid_credentials"
            )
        return TokenPair(
            access=create_token(user_id, "access", self.settings),
            refresh=create_token(user_id, "refresh", self.settings),
        )

    async def refresh_access(self, refresh_token: str) -> AccessToken:
        try:
            claims = decode_token(refresh_token, "refresh", self.settings)
        except InvalidTokenError as exc:
            raise AuthenticationError(
                "The refresh token is invalid or expired.", code="token_not_valid"
            ) from exc
        if await self.users.get_active_auth_user(claims.user_id) is None:
            raise AuthenticationError("The user is inactive or deleted.", code="token_not_valid")
        return AccessToken(access=create_token(claims.user_id, "access", self.settings))

    async def get_profile(self, user_id: int) -> User:
        user = await self.users.get(user_id)
        if user is None:
            raise NotFoundError("User not found.")
        return user

    async def update_profile(self, user_id: int, data: UserUpdate | UserPatch) -> User:
        # Hash before touching the database, so no connection waits on bcrypt.
        new_hash = None
        if data.password is not None:
            new_hash = await hash_password(data.password, self.settings)
        user = await self.get_profile(user_id)
        changes = data.model_dump(exclude_unset=isinstance(data, UserPatch), exclude={"password"})
        email = changes.get("email")
        if email is not None and await self.users.email_taken(email, except_user_id=user_id):
            raise EmailTakenError
        for field, value in changes.items():
            setattr(user, field, value)
        if new_hash is not None:
            user.hashed_password = new_hash
        try:
            await self.session.flush()
        except IntegrityError as exc:  # a concurrent update took the email meanwhile
            raise EmailTakenError from exc
        return user
