from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.core import clock
from library_service.core.audit import AuditAction, AuditTarget, AuditTrail, Target, diff, snapshot
from library_service.core.config import Settings
from library_service.core.db import UnitOfWork
from library_service.core.errors import PermissionDeniedError, RateLimitedError, found
from library_service.core.pagination import PageParams
from library_service.models import PasswordToken, User
from library_service.notifications import notices
from library_service.notifications.notices import Draft
from library_service.notifications.service import MemberNoticeService, Recipient
from library_service.users import rules
from library_service.users.errors import (
    AccountDeactivatedError,
    EmailTakenError,
    InvalidCredentialsError,
    LastStaffError,
    PasswordRequiredError,
    ResetRateLimitedError,
    ResetTokenExpiredError,
    ResetTokenInvalidError,
    ResetTokenUsedError,
    StaffOnlyError,
    TokenNotValidError,
    UserNotFoundError,
)
from library_service.users.repository import UserRepository
from library_service.users.schemas import (
    AccessToken,
    AuthUser,
    MemberFilters,
    MemberPatch,
    TokenPair,
    UserCreate,
    UserPatch,
    UserUpdate,
)
from library_service.users.security import (
    InvalidTokenError,
    create_token,
    decode_token,
    hash_password,
    verify_password,
)
from library_service.users.throttle import LoginAttempt, LoginThrottle

RESET = "reset"
WELCOME = "welcome"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserService:
    def __init__(
        self,
        uow: UnitOfWork,
        *,
        settings: Settings,
        throttle: LoginThrottle | None = None,
        reset_throttle: LoginThrottle | None = None,
    ) -> None:
        self.uow = uow
        self.settings = settings
        self.throttle = throttle or LoginThrottle.off()
        self.reset_throttle = reset_throttle or LoginThrottle.off()

    async def register(
        self, data: UserCreate, *, is_staff: bool = False, enrolled_by_staff: bool = False
    ) -> User:
        """A new account. Staff may leave the password out (`enrolled_by_staff`): the member
        is e-mailed a link to choose one, valid WELCOME_LINK_DAYS."""
        if data.password is None and not enrolled_by_staff:
            raise PasswordRequiredError
        async with self.uow.read() as session:
            if await UserRepository(session).email_taken(data.email):
                raise EmailTakenError
        # bcrypt is slow: no connection is held meanwhile. An enrolled member's password is
        # a random one nobody knows until they choose their own.
        password = data.password or secrets.token_urlsafe(32)
        user = User(
            email=data.email,
            hashed_password=await hash_password(password, self.settings),
            first_name=data.first_name,
            last_name=data.last_name,
            is_staff=is_staff,
        )
        library = self.settings.LIBRARY_NAME
        try:
            async with self.uow.write() as session:
                user = await UserRepository(session).add(user)
                if data.password is None:
                    valid = timedelta(days=self.settings.WELCOME_LINK_DAYS)
                    draft = notices.welcome_enrolled(
                        name=user.first_name,
                        library=library,
                        valid_days=self.settings.WELCOME_LINK_DAYS,
                    )
                    await self._send_password_link(session, user, WELCOME, valid, draft)
                else:
                    draft = notices.welcome(name=user.first_name, library=library)
                    await MemberNoticeService(session).record(_recipient(user), draft)
                return user
        except IntegrityError as exc:  # a concurrent registration won the unique index
            raise EmailTakenError from exc

    # -- password links -------------------------------------------------------------------

    async def request_password_reset(self, email: str, *, client_ip: str) -> None:
        """E-mail a single-use link to choose a new password, if an active account has this
        address; the caller learns nothing either way. Within the login limit's bounds."""
        try:
            await self.reset_throttle.reserve(client_ip, email)
        except RateLimitedError as exc:
            limited = ResetRateLimitedError(retry_after=1)
            limited.headers = exc.headers
            raise limited from exc
        async with self.uow.write() as session:
            user = await UserRepository(session).get_by_email(email)
            if user is None or not user.is_active:
                return
            valid = timedelta(minutes=self.settings.PASSWORD_RESET_MINUTES)
            draft = notices.password_reset(valid_minutes=self.settings.PASSWORD_RESET_MINUTES)
            await self._send_password_link(session, user, RESET, valid, draft)

    async def _send_password_link(
        self, session: AsyncSession, user: User, purpose: str, valid: timedelta, draft: Draft
    ) -> None:
        """A new token, kept only as its hash, and the notice whose link carries it (sealed
        until the e-mail is out)."""
        token = secrets.token_urlsafe(32)
        await UserRepository(session).add_password_token(
            PasswordToken(
                user_id=user.id,
                token_hash=token_hash(token),
                purpose=purpose,
                token_version=user.token_version,
                expires_at=clock.now() + valid,
            )
        )
        sealed = notices.seal(token, self.settings.SECRET_KEY)
        await MemberNoticeService(session).record(_recipient(user), draft, sealed_secret=sealed)

    async def check_password_token(self, token: str) -> None:
        """Raise the refusal a link would get now (the page checks before asking)."""
        async with self.uow.read() as session:
            found_token = await UserRepository(session).password_token(token_hash(token))
            user = await UserRepository(session).get(found_token.user_id) if found_token else None
        _check_token(found_token, user)

    async def reset_password(self, token: str, password: str) -> User:
        """Set the password a link was sent for; the link, every earlier one and every
        token issued before end here."""
        await self.check_password_token(token)
        new_hash = await hash_password(password, self.settings)  # no connection held
        async with self.uow.write() as session:
            users = UserRepository(session)
            link = await users.password_token(token_hash(token), for_update=True)
            assert link is not None
            user = await users.get(link.user_id, for_update=True)
            _check_token(link, user)  # used by a concurrent confirmation meanwhile?
            assert user is not None
            link.used_at = clock.now()
            user.hashed_password = new_hash
            user.token_version += 1
            await session.flush()
            if link.purpose == RESET:
                await MemberNoticeService(session).record(
                    _recipient(user), notices.password_changed()
                )
        return user

    async def obtain_tokens(self, email: str, password: str, *, client_ip: str) -> TokenPair:
        attempt, user = await self._check_password(email, password, client_ip=client_ip)
        if not user.is_active:
            raise InvalidCredentialsError  # the attempt stays counted
        await self.throttle.succeeded(attempt)
        version = user.token_version
        return TokenPair(
            access=create_token(user.id, "access", self.settings, version=version),
            refresh=create_token(user.id, "refresh", self.settings, version=version),
        )

    async def staff_login(self, email: str, password: str, *, client_ip: str) -> User:
        """The staff admin's sign-in: the API's password check and login limit, and then
        a refusal that says why for a member or a deactivated account (only once the
        password was right, so it reveals nothing to a guesser)."""
        attempt, user = await self._check_password(email, password, client_ip=client_ip)
        if not user.is_active:
            raise AccountDeactivatedError  # the attempt stays counted, as in the API
        if not user.is_staff:
            raise StaffOnlyError
        await self.throttle.succeeded(attempt)
        return user

    async def _check_password(
        self, email: str, password: str, *, client_ip: str
    ) -> tuple[LoginAttempt, User]:
        """Reserve a try of the login limit and check the password: InvalidCredentialsError
        unless the account exists and the password is its own (the try stays counted)."""
        attempt = await self.throttle.reserve(client_ip, email)
        async with self.uow.read() as session:
            user = await UserRepository(session).get_by_email(email)
        # bcrypt is slow: no connection is held meanwhile.
        hashed = user.hashed_password if user is not None else None
        if not await verify_password(password, hashed, self.settings) or user is None:
            raise InvalidCredentialsError
        return attempt, user

    async def staff_session_user(self, user_id: int, *, token_version: int) -> AuthUser | None:
        """The staff member a signed admin session names, if they are still active staff
        and have not changed their password since signing in (one query by primary key)."""
        async with self.uow.read() as session:
            user = await UserRepository(session).get_active_auth_user(
                user_id, token_version=token_version
            )
        return user if user is not None and user.is_staff else None

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
        return found(user, UserNotFoundError)

    async def update_profile(self, user_id: int, data: UserUpdate | UserPatch) -> User:
        # Hash before touching the database, so no connection waits on bcrypt.
        new_hash = None
        if data.password is not None:
            new_hash = await hash_password(data.password, self.settings)
        changes = data.model_dump(
            exclude_unset=isinstance(data, UserPatch), exclude_none=True, exclude={"password"}
        )
        try:
            async with self.uow.write() as session:
                users = UserRepository(session)
                user = found(await users.get(user_id), UserNotFoundError)
                email = changes.get("email")
                if email is not None and await users.email_taken(email, except_user_id=user_id):
                    raise EmailTakenError
                for field, value in changes.items():
                    setattr(user, field, value)
                if new_hash is not None:
                    user.hashed_password = new_hash
                    user.token_version += 1  # every token issued before ends here
                await session.flush()
                if new_hash is not None:
                    await MemberNoticeService(session).record(
                        _recipient(user), notices.password_changed()
                    )
        except IntegrityError as exc:  # a concurrent update took the email meanwhile
            raise EmailTakenError from exc
        return user

    # -- member management (staff) ------------------------------------------------------

    async def list_members(
        self, filters: MemberFilters, page: PageParams
    ) -> tuple[Sequence[User], int]:
        async with self.uow.read() as session:
            return await UserRepository(session).list(
                filters, page, estimate_ttl=self.settings.ESTIMATED_COUNT_CACHE_SECONDS
            )

    async def update_member(self, actor: AuthUser, user_id: int, data: MemberPatch) -> User:
        """Change a user's access or names, as staff.

        Nobody deactivates or demotes themselves, and the last active staff account keeps
        its access. A change that takes access away first locks every active staff row (in
        id order, see UserRepository.lock_active_staff): two staff members demoting each
        other at once run one after the other, and the second is refused.
        """
        changes = data.model_dump(exclude_unset=True)
        rules.check_may_change_access(actor_id=actor.id, user_id=user_id, change=data)
        async with self.uow.write() as session:
            users = UserRepository(session)
            staff_ids: Sequence[int] = ()
            if data.removes_access:
                staff_ids = await users.lock_active_staff()
            user = found(await users.get(user_id, for_update=True), UserNotFoundError)
            if data.removes_access:
                if user.id in staff_ids and len(staff_ids) == 1:
                    raise LastStaffError
                if actor.id not in staff_ids:  # demoted or deactivated meanwhile
                    raise PermissionDeniedError("Only library staff may do this.")
            was_active = user.is_active
            if data.is_active is False and user.is_active:
                user.token_version += 1  # its tokens end now, and stay ended if reactivated
            before = snapshot(user, changes)
            for field, value in changes.items():
                setattr(user, field, value)
            await session.flush()
            changed = diff(before, changes)
            if changed:
                await AuditTrail(session).record(
                    actor.id,
                    _member_action(changed),
                    Target(AuditTarget.MEMBER, user.id, member_id=user.id),
                    changes=changed,
                )
            library = self.settings.LIBRARY_NAME
            if was_active and not user.is_active:
                draft = notices.deactivated(library=library)
                await MemberNoticeService(session).record(_recipient(user), draft)
            elif user.is_active and not was_active:
                draft = notices.reactivated(library=library)
                await MemberNoticeService(session).record(_recipient(user), draft)
        return user


def _recipient(user: User) -> Recipient:
    return Recipient(user.id, user.email, user.email_reminders)


def _check_token(token: PasswordToken | None, user: User | None) -> None:
    if token is None or user is None or not user.is_active:
        raise ResetTokenInvalidError
    if token.used_at is not None or token.token_version != user.token_version:
        raise ResetTokenUsedError
    if token.expires_at <= clock.now():
        raise ResetTokenExpiredError


def _member_action(changed: dict[str, list[Any]]) -> AuditAction:
    """The change's name in the record: access first, names otherwise."""
    if "is_active" in changed:
        active = changed["is_active"][1]
        return AuditAction.MEMBER_ACTIVATE if active else AuditAction.MEMBER_DEACTIVATE
    if "is_staff" in changed:
        staff = changed["is_staff"][1]
        return AuditAction.MEMBER_GRANT_STAFF if staff else AuditAction.MEMBER_REVOKE_STAFF
    return AuditAction.MEMBER_UPDATE
