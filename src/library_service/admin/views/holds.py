"""Holds: the queues of the books all out, read-only; cancelling one goes through
HoldService.cancel, as the API does (a copy put aside moves on to the next in line)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_
from starlette.requests import Request
from starlette_admin import DateField, DateTimeField, EnumField, HasOne, IntegerField, row_action
from starlette_admin.flash import flash

from library_service.admin.desk import Desk, signed_in_staff
from library_service.admin.views.base import DATE, DATETIME, ReadOnlyDeskView, refusal_fails_action
from library_service.core.search import text_search
from library_service.holds import rules
from library_service.models import Book, Hold, HoldStatus, User


class HoldView(ReadOnlyDeskView):
    key = "holds"
    menu_label = "Holds"
    display_name = "Hold"
    icon = "fa fa-hourglass-half"
    list_template = "admin/list_with_tabs.html"
    fields = [
        IntegerField("id", label="#"),
        HasOne("user", key="members", label="Member"),
        HasOne("book", key="books", label="Book"),
        EnumField(
            "status",
            enum=HoldStatus,
            list_template="admin/fields/status.html",
            detail_template="admin/fields/status.html",
        ),
        DateField("ready_until", label="Put aside until", output_format=DATE),
        DateTimeField("created_at", label="Placed", output_format=DATETIME),
        DateTimeField("closed_at", label="Closed", exclude_from_list=True, output_format=DATETIME),
    ]
    sortable_fields = ["id", "status", "ready_until", "created_at"]
    fields_default_sort = [("id", True)]
    quick_filters = [
        ("All", ""),
        ("To put aside", "status__eq=READY"),
        ("Waiting", "status__eq=WAITING"),
        ("Collected", "status__eq=FULFILLED"),
        ("Expired", "status__eq=EXPIRED"),
        ("Cancelled", "status__eq=CANCELLED"),
    ]

    def __init__(self, desk: Desk) -> None:
        super().__init__(desk, Hold)

    def get_search_query(self, request: Request, term: str) -> Any:
        """The member's email or name, or the book's title."""
        return or_(
            Hold.user.has(text_search(term, User.email, User.last_name)),
            Hold.book.has(text_search(term, Book.title)),
        )

    async def repr(self, obj: Any, request: Request) -> str:
        return f"Hold #{obj.id}"

    async def is_row_action_allowed_for_obj(self, request: Request, name: str, obj: Any) -> bool:
        if name == "cancel_hold":
            return rules.can_cancel(obj)
        return await super().is_row_action_allowed_for_obj(request, name, obj)

    @row_action(
        name="cancel_hold",
        text="Cancel",
        confirmation="Cancel this hold? A copy put aside for it goes to the next in line.",
        submit_btn_text="Cancel the hold",
        icon_class="fa fa-xmark",
        action_btn_class="btn btn-outline-danger",
    )
    async def cancel_hold(self, request: Request, pk: Any) -> None:
        """POST /api/holds/{id}/cancel/, made by the signed-in staff member."""
        with refusal_fails_action():
            hold = await self.desk.holds().cancel(int(pk), signed_in_staff(request))
        flash(request, f"Hold #{hold.id} cancelled.", "success")
