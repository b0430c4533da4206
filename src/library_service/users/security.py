"""Password hashing (bcrypt, off the event loop) and JWT access/refresh tokens."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Literal

import anyio.to_thread
from jose import JWTError, jwt
from passlib.context import CryptContext

from library_service.core import clock
from library_service.core.config import Settings
from library_service.web.params import MAX_ID

ALGORITHM = "HS256"
MAX_PASSWORD_BYTES = 72  # bcrypt uses only the first 72 bytes; longer would be silently cut
ACCESS: Literal["access"] = "access"
TokenType = Literal["access", "refresh"]


@lru_cache
def _password_context(rounds: int) -> CryptContext:
    return CryptContext(schemes=["bcrypt"], bcrypt__rounds=rounds)


@lru_cache
def _dummy_hash(rounds: int) -> str:
    return str(_password_context(rounds).hash(secrets.token_urlsafe(16)))


async def hash_password(password: str, settings: Settings) -> str:
    context = _password_context(settings.BCRYPT_ROUNDS)
    return str(await anyio.to_thread.run_sync(context.hash, password))


async def verify_password(password: str, hashed: str | None, settings: Settings) -> bool:
    """Check a password; with no user (`hashed` is None) spend the same time and fail,
    so response times do not reveal which emails are registered."""
    rounds = settings.BCRYPT_ROUNDS
    context = _password_context(rounds)
    # bcrypt refuses more than 72 bytes, and no stored password is longer: such a password
    # cannot match, but costs the same time to refuse.
    too_long = len(password.encode()) > MAX_PASSWORD_BYTES
    target = hashed if hashed is not None and not too_long else _dummy_hash(rounds)
    candidate = "-" if too_long else password
    ok = bool(await anyio.to_thread.run_sync(context.verify, candidate, target))
    return ok and hashed is not None and not too_long


def create_token(
    user_id: int, token_type: TokenType, settings: Settings, *, version: int = 0
) -> str:
    """A signed token; `version` is the user's token_version when it is issued."""
    issued = clock.now()
    lifetime = (
        timedelta(minutes=settings.ACCESS_MINUTES)
        if token_type == ACCESS
        else timedelta(days=settings.REFRESH_DAYS)
    )
    claims = {
        "sub": str(user_id),
        "type": token_type,
        "iat": int(issued.timestamp()),
        "exp": int((issued + lifetime).timestamp()),
        "jti": secrets.token_hex(8),
        "ver": version,
    }
    return str(jwt.encode(claims, settings.SECRET_KEY, algorithm=ALGORITHM))


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    token_type: TokenType
    version: int


class InvalidTokenError(Exception):
    pass


def decode_token(token: str, expected_type: TokenType, settings: Settings) -> TokenClaims:
    """Verify signature, algorithm, expiry and the token's type; raise InvalidTokenError."""
    try:
        claims = jwt.decode(
            token,
            settings.SECRET_KEY,
            algorithms=[ALGORITHM],
            # Expiry is checked below against the library clock, which tests can freeze.
            options={"verify_exp": False, "require_sub": True},
        )
    except JWTError as exc:
        raise InvalidTokenError(str(exc)) from exc
    expires = claims.get("exp")
    if type(expires) is not int or expires <= clock.now().timestamp():
        raise InvalidTokenError("token expired")
    if claims.get("type") != expected_type:
        raise InvalidTokenError(f"not an {expected_type} token")
    subject = claims.get("sub")
    # Only what create_token writes: a user id in the id column's range, in ASCII digits.
    if not (isinstance(subject, str) and subject.isascii() and subject.isdigit()):
        raise InvalidTokenError("malformed subject")
    if len(subject) > len(str(MAX_ID)):
        raise InvalidTokenError("malformed subject")
    user_id = int(subject)
    if not 1 <= user_id <= MAX_ID:
        raise InvalidTokenError("malformed subject")
    version = claims.get("ver", 0)
    # The user's token_version, a PostgreSQL integer that starts at 0 and only grows: a
    # value outside it (or a JSON true, which Python counts as an int) could never match.
    if not (type(version) is int and 0 <= version <= MAX_ID):
        raise InvalidTokenError("malformed version")
    return TokenClaims(user_id=user_id, token_type=expected_type, version=version)
