"""The users domain's refusals, each with one code and one status."""

from __future__ import annotations

from library_service.core.errors import AppError, AuthenticationError, NotFoundError


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
