"""The holds queue's refusals, each with one code and one status."""

from __future__ import annotations

from library_service.core.errors import AppError, NotFoundError


class HoldNotFoundError(NotFoundError):
    code = "hold_not_found"
    message = "Hold not found."


class BookAvailableError(AppError):
    code = "book_available"
    message = "A copy of this book is on the shelf: borrow it instead of joining the queue."


class AlreadyOnHoldError(AppError):
    code = "already_on_hold"
    message = "You already have an open hold on this book."


class AlreadyBorrowingError(AppError):
    code = "already_borrowing"
    message = "You are borrowing this book now."


class HoldLimitReachedError(AppError):
    code = "hold_limit_reached"

    def __init__(self, limit: int) -> None:
        super().__init__(f"You already have {limit} open holds, the most allowed.")


class HoldClosedError(AppError):
    code = "hold_closed"
    message = "This hold is no longer open (it was collected, cancelled or expired)."
