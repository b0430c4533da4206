"""The users domain's refusals, each with one code and one status."""

from __future__ import annotations

from library_service.core.errors import (
    AppError,
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
)


class EmailTakenError(AppError):
    code = "email_taken"
    message = "A user with this email already exists."


class UserNotFoundError(NotFoundError):
    code = "user_not_found"
    message = "User not found."


class InvalidCredentialsError(AuthenticationError):
    code = "invalid_credentials"
    message = "No active account found with the given credentials."


class TokenNotValidError(AuthenticationError):
    code = "token_not_valid"


class OwnAccessError(AppError):
    code = "cannot_change_own_access"
    message = (
        "You cannot deactivate yourself or take away your own staff access; "
        "ask another staff member."
    )


class LastStaffError(AppError):
    code = "last_staff_account"
    message = (
        "This is the last active staff account; make someone else staff "
        "before deactivating or demoting it."
    )


class StaffOnlyError(PermissionDeniedError):
    """A member signing in to the staff admin (with the right password)."""

    code = "staff_only"
    message = "Only library staff may sign in here; members use the library's app."


class AccountDeactivatedError(PermissionDeniedError):
    """A deactivated account signing in to the staff admin (with the right password)."""

    code = "account_deactivated"
    message = "This account has been deactivated; ask another staff member to reactivate it."


class PasswordRequiredError(AppError):
    code = "password_required"
    message = "A password is required (only staff enrol a member without one)."


class ResetTokenInvalidError(AppError):
    code = "reset_token_invalid"
    message = "This password link is not valid; ask for a new one."


class ResetTokenUsedError(AppError):
    code = "reset_token_used"
    message = (
        "This password link was used already, or the password was changed since; ask for a new one."
    )


class ResetTokenExpiredError(AppError):
    code = "reset_token_expired"
    message = "This password link has expired; ask for a new one."


class ResetRateLimitedError(RateLimitedError):
    message = "Too many password reset requests; try again later."
