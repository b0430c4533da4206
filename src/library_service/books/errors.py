"""The catalogue's refusals, each with one code and one status."""

from __future__ import annotations

from library_service.core.errors import AppError, NotFoundError


class BookNotFoundError(NotFoundError):
    """No book has this id, whether it came in the path or in a request body."""

    code = "book_not_found"
    message = "There is no book with this id."


class BookWithdrawnError(AppError):
    code = "book_withdrawn"
    message = "This book is withdrawn from circulation: it cannot be borrowed or held."


class IsbnTakenError(AppError):
    code = "isbn_taken"
    message = "Another book already has this ISBN."


class BookOnLoanError(AppError):
    code = "book_has_active_borrowings"
    message = "This book is on loan; it can be deleted once every copy is returned."


class BookHasHistoryError(AppError):
    code = "book_has_history"
    message = (
        "This book has a borrowing history and cannot be deleted; "
        "withdraw it from circulation instead (withdrawn: true)."
    )
