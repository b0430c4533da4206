"""Holds: the queues of the books all out, read-only; cancelling one goes through
HoldService.cancel, as the API does (a copy put aside moves on to the next in line)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from markupsafe import Markup
from pydantic import ValidationError
from sqlalchemy import or_
from starlette.requests import Request
from starlette_admin import DateField, DateTimeField, EnumField, IntegerField, row_action
from starlette_admin.exceptions import ActionFailed
from starlette_admin.flash import flash
from starlette_admin.helpers import detail_url

from library_service.admin.desk import Desk, signed_in_staff
from library_service.admin.views.base import (
    DATE,
    DATETIME,
    NamedHasOne,
    ReadOnlyDeskView,
    refusal_fails_action,
)
from library_service.borrowings import rules as loan_rules
from library_service.borrowings.schemas import BorrowingCreate
from library_service.core import clock
from library_service.core.search import member_search, text_search
from library_service.holds import rules
from library_service.models import Book, Hold, HoldStatus


class HoldView(ReadOnlyDeskView):
    key = "holds"
    menu_label = "Holds"
    display_name = "Hold"
    icon = "fa fa-hourglass-half"
    list_template = "admin/list_with_tabs.html"
    fields = [
        IntegerField("id", label="#"),
        NamedHasOne("user", key="members", label="Member"),
        NamedHasOne("book", key="books", label="Book"),
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
        self.use_row_action_forms(hand_over=self._hand_over_form)

    def get_search_query(self, request: Request, term: str) -> Any:
        """The member's email or name, or the book's title."""
        return or_(
            Hold.user.has(member_search(term)),
            Hold.book.has(text_search(term, Book.title)),
        )

    async def repr(self, obj: Any, request: Request) -> str:
        return f"Hold #{obj.id}"

    async def is_row_action_allowed_for_obj(self, request: Request, name: str, obj: Any) -> bool:
        if name == "cancel_hold":
            return rules.can_cancel(obj)
        if name == "hand_over":
            return rules.can_hand_over(obj)
        return await super().is_row_action_allowed_for_obj(request, name, obj)

    def _hand_over_form(self, request: Request, hold: Any) -> str:
        today = clock.today(self.desk.settings.timezone)
        due = loan_rules.desk_due_date(today=today, settings=self.desk.settings)
        return str(
            Markup(
                "<form><p>Lend «{}» to <strong>{}</strong>: the copy put aside for this "
                "hold.</p>"
                "<label class='form-label' for='hand-over-due'>Due back on</label>"
                "<input class='form-control' type='date' id='hand-over-due' name='due' "
                "value='{}' min='{}' required></form>"
            ).format(hold.book.title, hold.user.email, due, today + timedelta(days=1))
        )

    @row_action(
        name="hand_over",
        text="Check out to the member",
        confirmation="Lend the copy put aside to the hold's member?",
        submit_btn_text="Lend it",
        icon_class="fa fa-cart-arrow-down",
        action_btn_class="btn btn-outline-primary",
        modal_size="md",  # its form names the book and the member: _hand_over_form
    )
    async def hand_over(self, request: Request, pk: Any) -> None:
        """POST /api/borrowings/ with the hold's book and `user`, made by the signed-in
        staff member: the member's READY hold is fulfilled, as when they borrow it."""
        staff = signed_in_staff(request)
        with refusal_fails_action():
            hold = await self.desk.holds().get_hold(int(pk), staff)
        try:
            data = BorrowingCreate.model_validate(
                {
                    "book": hold.book.id,
                    "user": hold.user_id,
                    "expected_return_date": (await request.form()).get("due"),
                }
            )
        except ValidationError as exc:
            raise ActionFailed("Pick the due date.") from exc
        with refusal_fails_action():
            borrowing = await self.desk.borrowings(request).borrow(staff, data)
        fee = borrowing.payments[0]
        payment = detail_url(request, "payments", fee.id)
        flash(
            request,
            f"Hold #{hold.id} handed over: borrowing #{borrowing.id}, due "
            f"{borrowing.expected_return_date}. Fee ${fee.money_to_pay}: take it in cash on "
            f"the payment's page ({payment}) or give the member its link {fee.session_url}",
            "success",
        )

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
