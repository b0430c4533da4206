from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from library_service.core.config import Settings
from library_service.core.db import UnitOfWork
from library_service.core.ratelimit import LoginThrottle
from library_service.core.security import (
    InvalidTokenError,
    create_token,
    decode_token,
    hash_password,
    verify_password,
)
from library_service.models import User
from library_service.users.errors import (
    EmailTakenError,
    InvalidCredentialsError,
    TokenNotValidError,
    UserNotFoundError,
)
from library_service.users.repository import UserRepository
from library_service.users.schemas import (
    AccessToken,
    TokenPair,
    UserCreate,
    UserPatch,
    UserUpdate,
)


class UserService:
    def __init__(
        self, uow: UnitOfWork, *, settings: Settings, throttle: LoginThrottle | None = None
    ) -> None:
        self.uow = uow
        self.settings = settings
        self.throttle = throttle or LoginThrottle(None, limit=0, window_seconds=0)

    async def register(self, data: UserCreate, *, is_staff: bool = False) -> User:
        async with self.uow.read() as session:
            if await UserRepository(session).email_taken(data.email):
                raise EmailTakenError
        # bcrypt is slow: no connection is held meanwhile.
        user = User(
            email=data.email,
            hashed_password=await hash_password(data.password, self.settings),
            first_name=data.first_name,
            last_name=data.last_name,
            is_staff=is_staff,
        )
        try:
            async with self.uow.write() as session:
                return await UserRepository(session).add(user)
        except IntegrityError as exc:  # a concurrent registration won the unique index
            raise EmailTakenError from exc

    async def obtain_tokens(self, email: str, password: str, *, client_ip: str) -> TokenPair:
        attempt = await self.throttle.reserve(client_ip, email)
        async with self.uow.read() as session:
            user = await UserRepository(session).get_by_email(email)
        if user is not None and not user.is_active:
            user = None
        # bcrypt is slow: no connection is held meanwhile.
        hashed = user.hashed_password if user is not None else None
        if not await verify_password(password, hashed, self.settings) or user is None:
            raise InvalidCredentialsError  # the attempt stays counted
        await self.throttle.succeeded(attempt)
        version = user.token_version
        return TokenPair(
            access=create_token(user.id, "access", self.settings, version=version),
            refresh=create_token(user.id, "refresh", self.settings, version=version),
        )

    async def refresh_access(self, refresh_token: str) -> AccessToken:
        try:
            claims = decode_token(refresh_token, "refresh", self.settings)
        except InvalidTokenError as exc:
            raise TokenNotValidError("The refresh token is invalid or expired.") from exc
        async with self.uow.read() as session:
            user = await UserRepository(session).get_active_auth_user(
                claims.user_id, token_version=claims.version
            )
        if user is None:
            raise TokenNotValidError("The user is inactive or deleted, or the token was revoked.")
        access = create_token(claims.user_id, "access", self.settings, version=claims.version)
        return AccessToken(access=access)

    async def get_profile(self, user_id: int) -> User:
        async with self.uow.read() as session:
            user = await UserRepository(session).get(user_id)
        if user is None:
            raise UserNotFoundError
        return user

    async def update_profile(self, user_id: int, data: UserUpdate | UserPatch) -> User:
        # Hash before touching the database, so no connection waits on bcrypt.
        new_hash = None
        if data.password is not None:
            new_hash = await hash_password(data.password, self.settings)
        changes = data.model_dump(exclude_unset=isinstance(data, UserPatch), exclude={"password"})
        try:
            async with self.uow.write() as session:
                users = UserRepository(session)
                user = await users.get(user_id)
                if user is None:
                    raise UserNotFoundError
                email = changes.get("email")
                if email is not None and await users.email_taken(email, except_user_id=user_id):
                    raise EmailTakenError
                for field, value in changes.items():
                    setattr(user, field, value)
                if new_hash is not None:
                    user.hashed_password = new_hash
                    user.token_version += 1  # every token issued before ends here
                await session.flush()
        except IntegrityError as exc:  # a concurrent update took the email meanwhile
            raise EmailTakenError from exc
        return user
