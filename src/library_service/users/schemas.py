from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field

from library_service.users.security import MAX_PASSWORD_BYTES
from library_service.web.params import InputModel, JsonBool, PatchModel


@dataclass(frozen=True, slots=True)
class MemberRowFilters:
    """Filters of a list whose rows each belong to a member (borrowings, holds, payments)."""

    user_id: int | None = None  # the member's own id, or a staff filter


F = TypeVar("F", bound=MemberRowFilters)


@dataclass(frozen=True, slots=True)
class AuthUser:
    """Who is making the request: the few columns authorization needs, not an ORM object."""

    id: int
    email: str
    is_staff: bool

    @property
    def restricted_to(self) -> int | None:
        """Whose rows this user may read: a member only their own, staff anyone's (None)."""
        return None if self.is_staff else self.id

    def restrict(self, filters: F) -> F:
        """Members see their own rows, whatever they ask for; staff what they ask for."""
        return filters if self.is_staff else replace(filters, user_id=self.id)


MIN_PASSWORD_BYTES = 8


def _check_password(value: str) -> str:
    size = len(value.encode())
    if size < MIN_PASSWORD_BYTES:
        raise ValueError(f"password must be at least {MIN_PASSWORD_BYTES} bytes long")
    if size > MAX_PASSWORD_BYTES:
        raise ValueError(f"password must be at most {MAX_PASSWORD_BYTES} bytes long (UTF-8)")
    if "\x00" in value:
        raise ValueError("password must not contain NUL characters")
    if not value.strip():
        raise ValueError("password must not be only whitespace")
    return value


def _normalize_email(value: str) -> str:
    return value.lower()


Password = Annotated[
    str,
    Field(description="8 to 72 bytes (UTF-8).", examples=["correct-horse-battery"]),
    AfterValidator(_check_password),
]
Email = Annotated[
    EmailStr,
    Field(max_length=254, examples=["reader@example.com"]),
    AfterValidator(_normalize_email),
]
Name = Annotated[str, Field(max_length=150)]


class UserCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "new.reader@example.com",
                    "password": "correct-horse-battery",
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                }
            ]
        }
    )

    email: Email
    # Left out only by staff enrolling a member, who then gets a link to choose their own.
    password: Password | None = None
    first_name: Name = ""
    last_name: Name = ""


class UserUpdate(InputModel):
    """Full update (PUT): email and names; the password and `email_reminders` only when
    given (a form that leaves the choice out does not sign an opted-out member up again)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "reader@library.example.com",
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                }
            ]
        }
    )

    email: Email
    first_name: Name = ""
    last_name: Name = ""
    password: Password | None = None
    email_reminders: JsonBool | None = None


class UserPatch(PatchModel):
    """Partial update (PATCH): only the fields sent change."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"first_name": "Ada"}]})

    not_nullable = ("email", "first_name", "last_name", "password", "email_reminders")

    email: Email | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    password: Password | None = None
    email_reminders: JsonBool | None = None


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    first_name: str
    last_name: str
    is_staff: bool
    email_reminders: bool = Field(
        description="Due and overdue reminders by e-mail (they are in the app either way)."
    )
    date_joined: datetime


class MemberRead(UserRead):
    """A user as staff see them: with whether the account is active."""

    is_active: bool


class MemberPatch(PatchModel):
    """Staff changing a user: access and names (email and password stay the user's own)."""

    # A field staff may not change is refused, not silently ignored.
    model_config = ConfigDict(extra="forbid")

    not_nullable = ("is_active", "is_staff", "first_name", "last_name")

    is_active: JsonBool | None = None
    is_staff: JsonBool | None = None
    first_name: Name | None = None
    last_name: Name | None = None

    @property
    def removes_access(self) -> bool:
        """Deactivates the user or takes their staff access away."""
        return self.is_active is False or self.is_staff is False


@dataclass(frozen=True, slots=True)
class MemberFilters:
    search: str | None = None  # in email, first or last name; any case
    is_active: bool | None = None
    is_staff: bool | None = None


class TokenRequest(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"email": "reader@library.example.com", "password": "reader-password"}]
        }
    )

    email: Annotated[str, Field(max_length=254)]
    password: Annotated[str, Field(max_length=1024)]


class TokenPair(BaseModel):
    access: str
    refresh: str


class RefreshRequest(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"refresh": "the refresh token that POST /api/users/token/ answered"}]
        }
    )

    refresh: Annotated[str, Field(max_length=4096)]


class AccessToken(BaseModel):
    access: str


class PasswordResetRequest(InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"email": "reader@example.com"}]})

    email: Email


class PasswordResetConfirm(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"token": "the token from the e-mailed link", "password": "new-password"}]
        }
    )

    token: Annotated[str, Field(min_length=1, max_length=256)]
    password: Password


class PasswordResetAccepted(BaseModel):
    detail: str
