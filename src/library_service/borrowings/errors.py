"""The borrowings domain's refusals, each with one code and one status."""

from __future__ import annotations

from library_service.core.errors import (
    AppError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
)


class BorrowingNotFoundError(NotFoundError):
    code = "borrowing_not_found"
    message = "Borrowing not found."


class AlreadyReturnedError(AppError):
    code = "already_returned"
    message = "This borrowing has already been returned."


class LendingForOthersError(PermissionDeniedError):
    code = "lending_requires_staff"
    message = "Only library staff may lend a book to someone else; leave out `user`."


class MemberInactiveError(AppError):
    code = "member_inactive"
    message = "This member's account is deactivated: nothing can be lent to it."


class BookUnavailableError(AppError):
    code = "book_unavailable"
    message = "No copy of this book is available right now."


class InvalidReturnDateError(AppError):
    code = "invalid_return_date"
    message = "expected_return_date must be after today."


class ReturnDateTooFarError(AppError):
    code = "return_date_too_far"


class UnpaidFinesError(AppError):
    code = "unpaid_fines"
    message = "You have an unpaid fine; pay it (or renew its payment) before borrowing again."


class LoanLimitReachedError(AppError):
    code = "loan_limit_reached"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"You already have {limit} active borrowings, the most allowed; "
            "return one before borrowing again."
        )


class AmountTooLargeError(AppError):
    code = "amount_too_large"
    message = "This loan would cost more than one card payment can be; borrow it for fewer days."


class BorrowingOverdueError(AppError):
    code = "borrowing_overdue"
    message = "This borrowing is overdue: return the book instead of extending the loan."


class InvalidExtensionDateError(AppError):
    code = "invalid_extension_date"
    message = "expected_return_date must be after the borrowing's current one."


class ExtensionLimitReachedError(AppError):
    code = "extension_limit_reached"

    def __init__(self, limit: int) -> None:
        super().__init__(f"This loan has been extended {limit} times, the most allowed.")


class BookOnHoldError(AppError):
    code = "book_on_hold"
    message = "Another member is waiting for this book: it must come back on time."


class BorrowingChangedError(ConflictError):
    code = "borrowing_changed"
    message = "This borrowing changed while you were extending it; reload it and try again."


class FeeChangedError(ConflictError):
    code = "fee_changed"
    message = "The book's daily fee changed while you were borrowing it; please try again."
