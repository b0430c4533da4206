from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.books.errors import (
    BookHasHistoryError,
    BookNotFoundError,
    BookOnLoanError,
    IsbnTakenError,
)
from library_service.books.repository import BookRepository, catalogue_page
from library_service.books.schemas import BookCreate, BookFilters, BookPatch
from library_service.circulation import copies
from library_service.core import clock
from library_service.core.audit import AuditAction, AuditTarget, AuditTrail, Target, diff, snapshot
from library_service.core.config import Settings
from library_service.core.db import AnyRow, UnitOfWork
from library_service.core.errors import found
from library_service.core.pagination import PageParams
from library_service.models import Book


@dataclass(frozen=True, slots=True)
class BookUpdate:
    book: Book
    copies_to_holds: int  # of the copies added, how many went to members waiting


def _book_action(changed: dict[str, Any]) -> AuditAction:
    if "withdrawn" in changed:
        return AuditAction.BOOK_WITHDRAW if changed["withdrawn"][1] else AuditAction.BOOK_REINSTATE
    return AuditAction.BOOK_UPDATE


class BookService:
    def __init__(self, uow: UnitOfWork, *, settings: Settings) -> None:
        self.uow = uow
        self.settings = settings

    async def list_books(
        self, filters: BookFilters, page: PageParams
    ) -> tuple[Sequence[AnyRow], int]:
        async with self.uow.read_rows() as connection:
            return await catalogue_page(
                connection, filters, page, count_ttl=self.settings.BOOK_COUNT_CACHE_SECONDS
            )

    async def get_book(self, book_id: int) -> Book:
        async with self.uow.read() as session:
            book = await BookRepository(session).get(book_id)
        return found(book, BookNotFoundError)

    async def create_book(self, data: BookCreate, *, staff_id: int) -> Book:
        try:
            async with self.uow.write() as session:
                books = BookRepository(session)
                if data.isbn is not None and await books.isbn_taken(data.isbn):
                    raise IsbnTakenError
                fields = data.model_dump()
                book = await books.add(Book(**fields))
                await AuditTrail(session).record(
                    staff_id,
                    AuditAction.BOOK_CREATE,
                    Target(AuditTarget.BOOK, book.id, book_id=book.id),
                    changes=diff({}, fields),
                )
        except IntegrityError as exc:  # a concurrent create took the ISBN
            raise IsbnTakenError from exc
        BookRepository.forget_totals()
        return book

    async def update_book(
        self, book_id: int, data: BookCreate | BookPatch, *, staff_id: int
    ) -> BookUpdate:
        """The book changed, with what became of the copies added (each to a waiting hold
        first, the rest to the shelf)."""
        changes = data.model_dump(exclude_unset=isinstance(data, BookPatch))
        try:
            async with self.uow.write() as session:
                books = BookRepository(session)
                # The shelf count and holds only ever change under the book's row lock.
                book = found(await books.get(book_id, for_update=True), BookNotFoundError)
                isbn = changes.get("isbn")
                if isbn is not None and await books.isbn_taken(isbn, except_book_id=book_id):
                    raise IsbnTakenError
                before = snapshot(book, changes)
                to_holds = await self._apply(session, book, dict(changes))
                await session.flush()
                changed = diff(before, snapshot(book, changes))
                if changed:
                    await AuditTrail(session).record(
                        staff_id,
                        _book_action(changed),
                        Target(AuditTarget.BOOK, book.id, book_id=book.id),
                        changes=changed,
                    )
        except IntegrityError as exc:  # a concurrent update took the ISBN
            raise IsbnTakenError from exc
        BookRepository.forget_totals()
        return BookUpdate(book=book, copies_to_holds=to_holds)

    async def _apply(self, session: AsyncSession, book: Book, changes: dict[str, Any]) -> int:
        """Set the fields; copies added go to the book's queue first, and withdrawing the
        book cancels its holds."""
        today = clock.today(self.settings.timezone)
        # Staff state the shelf count they see; copies put aside for cancelled holds come on
        # top of it, so the change is measured before any hold is cancelled.
        added = changes.pop("inventory", book.inventory) - book.inventory
        withdrawing = changes.get("withdrawn", book.withdrawn) and not book.withdrawn
        for field, value in changes.items():
            setattr(book, field, value)
        if withdrawing:
            await copies.cancel_all(session, book, today=today, settings=self.settings)
        if added > 0:
            passed = await copies.release_copies(
                session, book, count=added, today=today, settings=self.settings
            )
            return len(passed)
        copies.remove_from_shelf(book, -added)
        return 0

    async def delete_book(self, book_id: int, *, staff_id: int) -> None:
        async with self.uow.write() as session:
            books = BookRepository(session)
            book = found(await books.get(book_id, for_update=True), BookNotFoundError)
            if await books.on_loan(book_id):
                raise BookOnLoanError
            if await books.has_history(book_id):
                raise BookHasHistoryError
            gone = snapshot(book, ("title", "author", "isbn"))
            await books.delete(book)
            await AuditTrail(session).record(
                staff_id,
                AuditAction.BOOK_DELETE,
                Target(AuditTarget.BOOK, book_id, book_id=book_id),
                changes={field: [value, None] for field, value in gone.items()},
            )
        BookRepository.forget_totals()
