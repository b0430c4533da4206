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

ALGORITHM = "HS256"
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
    target = hashed if hashed is not None else _dummy_hash(rounds)
    ok = bool(await anyio.to_thread.run_sync(context.verify, password, target))
    return ok and hashed is not None


def create_token(user_id: int, token_type: TokenType, settings: Settings) -> str:
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
    }
    return str(jwt.encode(claims, settings.SECRET_KEY, algorithm=ALGORITHM))


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    token_type: TokenType


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
    if not isinstance(expires, int) or expires <= clock.now().timestamp():
        raise InvalidTokenError("token expired")
    if claims.get("type") != expected_type:
        raise InvalidTokenError(f"not an {expected_type} token")
    try:
        user_id = int(claims["sub"])
    except (TypeError, ValueError) as exc:
        raise InvalidTokenError("malformed subject") from exc
    return TokenClaims(user_id=user_id, token_type=expected_type)
