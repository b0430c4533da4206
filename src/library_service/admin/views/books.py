"""Books: the catalogue, searched and sorted as the API does; changes through BookService."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_
from starlette.requests import Request
from starlette_admin import (
    BooleanField,
    DecimalField,
    EnumField,
    IntegerField,
    StringField,
    TextAreaField,
)
from starlette_admin.flash import flash
from starlette_admin.types import RequestAction, RowActionsDisplayType

from library_service.admin.desk import Desk, signed_in_staff
from library_service.admin.views.base import DeskView, for_each_row, refused_form, validated
from library_service.audit.schemas import AuditFilters
from library_service.books.errors import IsbnTakenError
from library_service.books.repository import isbn_digits_searched
from library_service.books.schemas import BookCreate, BookPatch
from library_service.core.errors import AppError
from library_service.core.pagination import PageParams
from library_service.core.search import text_search
from library_service.models import Book, Cover

INVENTORY_SHOWN = "_inventory_shown"  # the copies the edit form was opened with
HISTORY_ROWS = 50  # a book's page lists this many of its latest staff actions


class BookView(DeskView):
    key = "books"
    menu_label = "Books"
    display_name = "Book"
    icon = "fa fa-book"
    edit_template = "admin/book_edit.html"
    detail_template = "admin/book_detail.html"
    # Icons in the list: with its columns it fits 1280 px without scrolling sideways.
    row_actions_display_type = RowActionsDisplayType.ICON_LIST
    fields = [
        IntegerField("id", label="#", exclude_from_create=True, exclude_from_edit=True),
        StringField("title", required=True, maxlength=255),
        StringField("author", required=True, maxlength=255),
        StringField(
            "isbn",
            label="ISBN",
            maxlength=20,
            help_text="ISBN-10 or ISBN-13; hyphens and spaces are fine.",
        ),
        EnumField(
            "cover",
            choices=[(Cover.HARD.value, "Hardcover"), (Cover.SOFT.value, "Paperback")],
            required=True,
            default=Cover.HARD.value,
            exclude_from_list=True,
        ),
        IntegerField(
            "inventory",
            label="Copies on the shelf",
            min=0,
            required=True,
            default=1,
            help_text="Copies on loan are not counted here.",
        ),
        DecimalField(
            "daily_fee",
            label="Daily fee (USD)",
            step="0.01",
            required=True,
            list_template="admin/fields/money.html",
        ),
        IntegerField("year", exclude_from_list=True),
        TextAreaField("description", exclude_from_list=True),
        BooleanField(
            "withdrawn",
            label="Withdrawn",
            help_text=(
                "Out of circulation: not lent or held, left out of the catalogue; its open "
                "holds are cancelled. Untick to reinstate the book."
            ),
            # A badge on the withdrawn ones only: a cross on every book in circulation
            # read as an error.
            list_template="admin/fields/withdrawn.html",
            detail_template="admin/fields/withdrawn.html",
        ),
    ]
    sortable_fields = ["id", "title", "author", "isbn", "inventory", "daily_fee", "withdrawn"]
    fields_default_sort = ["title"]

    def __init__(self, desk: Desk) -> None:
        super().__init__(desk, Book)

    def get_search_query(self, request: Request, term: str) -> Any:
        """Title, author or ISBN, as GET /api/books/?search= matches them: the ISBNs only
        for a term that can be part of one (others would scan 200,000 of them for nothing)."""
        matches = text_search(term, Book.title, Book.author)
        digits = isbn_digits_searched(term)
        return or_(matches, text_search(digits, Book.isbn)) if digits else matches

    async def repr(self, obj: Any, request: Request) -> str:
        return f"«{obj.title}»"

    async def find_by_pk(self, request: Request, pk: Any) -> Any:
        book = await super().find_by_pk(request, pk)
        if book is not None and request.state.action == RequestAction.DETAIL:
            desk = self.desk.figures()
            activity, activity_count = await self.desk.audit().list_entries(
                AuditFilters(book_id=book.id), PageParams(limit=HISTORY_ROWS, offset=0)
            )
            request.state.book_standing = {
                "loans": await desk.loans_of_book(book.id),
                "queue": await desk.queue_of_book(book.id),
                "activity": activity,
                "activity_count": activity_count,
            }
        return book

    async def create(self, request: Request, data: dict[str, Any]) -> Any:
        book = validated(BookCreate, data)
        try:
            created = await self.desk.books().create_book(
                book, staff_id=signed_in_staff(request).id
            )
        except IsbnTakenError as exc:
            raise refused_form(request, exc, field="isbn") from exc
        except AppError as exc:
            raise refused_form(request, exc) from exc
        request.state.created_pk = created.id  # shown on its own page next (DeskAdmin)
        return created

    async def edit(self, request: Request, pk: Any, data: dict[str, Any]) -> Any:
        changes = validated(BookCreate, data).model_dump()
        # Copies come and go with every loan: only the number the librarian typed in is
        # written, not the one the form was opened with.
        shown = (await request.form()).get(INVENTORY_SHOWN)
        if isinstance(shown, str) and shown.isdigit() and int(shown) == changes["inventory"]:
            del changes["inventory"]
        try:
            updated = await self.desk.books().update_book(
                int(pk), BookPatch(**changes), staff_id=signed_in_staff(request).id
            )
        except IsbnTakenError as exc:
            raise refused_form(request, exc, field="isbn") from exc
        except AppError as exc:
            raise refused_form(request, exc) from exc
        if updated.copies_to_holds:
            flash(
                request,
                f"{updated.copies_to_holds} of the copies added went to members waiting: "
                "their holds are READY to be collected (see the book's queue).",
                "info",
            )
        return updated.book

    async def delete(self, request: Request, pks: Sequence[Any]) -> int:
        """Each book through BookService.delete_book: one on loan or with a history stays."""
        books, staff_id = self.desk.books(), signed_in_staff(request).id

        async def delete(book_id: int) -> None:
            await books.delete_book(book_id, staff_id=staff_id)

        return await for_each_row(pks, delete, done="deleted")
