from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.books.repository import BookFilters, BookRepository
from library_service.books.schemas import BookCreate, BookPatch
from library_service.core.config import Settings
from library_service.core.db import AnyRow
from library_service.core.errors import AppError, NotFoundError
from library_service.core.pagination import PageParams
from library_service.models import Book


class BookNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("Book not found.", code="book_not_found")


class IsbnTakenError(AppError):
    code = "isbn_taken"

    def __init__(self) -> None:
        super().__init__("Another book already has this ISBN.")


class BookService:
    def __init__(self, session: AsyncSession, *, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.books = BookRepository(session)

    async def list_books(
        self, filters: BookFilters, page: PageParams
    ) -> tuple[Sequence[AnyRow], int]:
        return await self.books.list(
            filters, page, count_ttl=self.settings.BOOK_COUNT_CACHE_SECONDS
        )

    async def get_book(self, book_id: int) -> Book:
        book = await self.books.get(book_id)
        if book is None:
            raise BookNotFoundError
        return book

    async def create_book(self, data: BookCreate) -> Book:
        if data.isbn is not None and await self.books.isbn_taken(data.isbn):
            raise IsbnTakenError
        try:
            book = await self.books.add(Book(**data.model_dump()))
        except IntegrityError as exc:  # a concurrent create took the ISBN
            raise IsbnTakenError from exc
        self.books.forget_totals()
        return book

    async def update_book(self, book_id: int, data: BookCreate | BookPatch) -> Book:
        # Inventory is only ever changed under the book's row lock (see borrowings).
        book = await self.books.get(book_id, for_update=True)
        if book is None:
            raise BookNotFoundError
        changes = data.model_dump(exclude_unset=isinstance(data, BookPatch))
        isbn = changes.get("isbn")
        if isbn is not None and await self.books.isbn_taken(isbn, except_book_id=book_id):
            raise IsbnTakenError
        for field, value in changes.items():
            setattr(book, field, value)
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise IsbnTakenError from exc
        self.books.forget_totals()
        return book

    async def delete_book(self, book_id: int) -> None:
        book = await self.books.get(book_id, for_update=True)
        if book is None:
            raise BookNotFoundError
        if await self.books.has_borrowings(book_id, active_only=True):
            raise AppError(
                "This book is on loan; it can be deleted once every copy is returned.",
                code="book_has_active_borrowings",
            )
        if await self.books.has_borrowings(book_id, active_only=False):
            # Borrowings and their payments are the library's ledger and must keep their book.
            raise AppError(
                "This book has a borrowing history and cannot be deleted; "
                "set its inventory to 0 to withdraw it from circulation.",
                code="book_has_history",
            )
        await self.books.delete(book)
        self.books.forget_totals()
