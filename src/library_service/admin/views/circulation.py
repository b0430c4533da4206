"""Borrowings and payments: read-only lists; a return and a new checkout link are actions
that call BorrowingService.return_book and PaymentService.renew, as the API does. No amount,
status, date or copy count of theirs is ever a form field."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from markupsafe import Markup
from pydantic import ValidationError
from sqlalchemy import Select, or_, select
from sqlalchemy.orm import joinedload, selectinload
from starlette.requests import Request
from starlette_admin import (
    DateField,
    DateTimeField,
    DecimalField,
    EnumField,
    IntegerField,
    StringField,
    URLField,
    row_action,
)
from starlette_admin.contrib.sqla.filters import EqualFilter
from starlette_admin.exceptions import ActionFailed
from starlette_admin.filters import FilterApplyContext
from starlette_admin.flash import flash
from starlette_admin.types import RequestAction

from library_service.admin.desk import Desk, signed_in_staff
from library_service.admin.views.base import (
    DATE,
    DATETIME,
    NamedHasOne,
    ReadOnlyDeskView,
    refusal_fails_action,
)
from library_service.borrowings import rules as loan_rules
from library_service.borrowings.schemas import BorrowingExtend
from library_service.core import clock
from library_service.core.search import member_search, text_search
from library_service.models import (
    Book,
    Borrowing,
    Payment,
    PaymentMethod,
    PaymentStatus,
    PaymentType,
)
from library_service.payments import rules as payment_rules

MEMBER_PARAM = "member"  # ?member=<user id>: one member's borrowings or payments


@dataclass(frozen=True, slots=True)
class LoanState:
    name: str  # ACTIVE, OVERDUE or RETURNED
    days_late: int = 0


def loan_state(borrowing: Any, today: date) -> LoanState:
    """A borrowing (an ORM row or a list item) as the desk sees it today."""
    if not loan_rules.can_return(borrowing):
        return LoanState("RETURNED")
    if loan_rules.is_overdue(borrowing, today=today):
        return LoanState("OVERDUE", loan_rules.days_late(borrowing, today=today))
    return LoanState("ACTIVE")


class LoanStateFilter(EqualFilter):
    """?filter=state__eq=OVERDUE: on loan, due today, overdue (due before today) or returned."""

    def apply(self, ctx: FilterApplyContext) -> Any:
        returned = Borrowing.actual_return_date.is_not(None)
        if ctx.value == "RETURNED":
            return returned
        view: BorrowingView = ctx.view  # type: ignore[assignment]
        today = clock.today(view.desk.settings.timezone)
        if ctx.value == "OVERDUE":
            return loan_rules.overdue_clause(today=today)
        if ctx.value == "DUE_TODAY":
            return loan_rules.due_on_clause(day=today)
        return ~returned  # ACTIVE: every loan not yet returned, overdue ones included


@dataclass
class LoanStateField(EnumField):
    """The loan's state as a badge (overdue ones in red, with their days late)."""

    desk: Desk | None = None

    async def parse_obj(self, request: Request, obj: Any) -> Any:
        assert self.desk is not None
        return loan_state(obj, clock.today(self.desk.settings.timezone))

    async def serialize_value(self, request: Request, value: Any) -> Any:
        return {"name": value.name, "days_late": value.days_late}


def _member_scope(request: Request, statement: Select[Any], user_id_column: Any) -> Select[Any]:
    member = request.query_params.get(MEMBER_PARAM, "")
    if member.isdigit() and len(member) < 11:
        return statement.where(user_id_column == int(member))
    return statement


class BorrowingView(ReadOnlyDeskView):
    key = "borrowings"
    menu_label = "Borrowings"
    display_name = "Borrowing"
    icon = "fa fa-right-left"
    list_template = "admin/list_with_tabs.html"
    detail_template = "admin/borrowing_detail.html"
    sortable_fields = ["id", "borrow_date", "expected_return_date", "actual_return_date"]
    fields_default_sort = [("id", True)]
    quick_filters = [
        ("All", ""),
        ("On loan", "state__eq=ACTIVE"),
        ("Due today", "state__eq=DUE_TODAY"),
        ("Overdue", "state__eq=OVERDUE"),
        ("Returned", "state__eq=RETURNED"),
    ]

    def __init__(self, desk: Desk) -> None:
        self.fields = [
            IntegerField("id", label="#"),
            NamedHasOne("user", key="members", label="Member"),
            NamedHasOne("book", key="books", label="Book"),
            DateField("borrow_date", label="Borrowed", output_format=DATE),
            DateField("expected_return_date", label="Due", output_format=DATE),
            DateField(
                "actual_return_date", label="Returned", output_format=DATE, exclude_from_list=True
            ),
            LoanStateField(
                "state",
                label="State",
                choices=[
                    ("ACTIVE", "On loan"),
                    ("DUE_TODAY", "Due today"),  # a filter only: such a loan shows as on loan
                    ("OVERDUE", "Overdue"),
                    ("RETURNED", "Returned"),
                ],
                filters=[LoanStateFilter],
                read_only=True,
                orderable=False,
                exclude_from_export=True,
                list_template="admin/fields/loan_state.html",
                detail_template="admin/fields/loan_state.html",
                desk=desk,
            ),
        ]
        super().__init__(desk, Borrowing)
        self.use_row_action_forms(return_book=self._return_form, extend=self._extend_form)

    def get_list_query(self, request: Request) -> Any:
        # The payments, for the Return button's warning of what is unpaid.
        statement = select(Borrowing).options(selectinload(Borrowing.payments))
        return _member_scope(request, statement, Borrowing.user_id)

    def get_detail_query(self, request: Request) -> Any:
        return select(Borrowing).options(selectinload(Borrowing.payments))

    def get_count_query(self, request: Request) -> Any:
        return _member_scope(request, super().get_count_query(request), Borrowing.user_id)

    def get_search_query(self, request: Request, term: str) -> Any:
        """The member's email or name, or the book's title."""
        return or_(
            Borrowing.user.has(member_search(term)),
            Borrowing.book.has(text_search(term, Book.title)),
        )

    async def find_by_pk(self, request: Request, pk: Any) -> Any:
        borrowing = await super().find_by_pk(request, pk)
        if borrowing is not None and request.state.action == RequestAction.DETAIL:
            staff = signed_in_staff(request)
            request.state.borrowing_payments = (
                await self.desk.borrowings(request).get_borrowing(borrowing.id, staff)
            ).payments
        return borrowing

    async def repr(self, obj: Any, request: Request) -> str:
        return f"Borrowing #{obj.id}"

    async def is_row_action_allowed_for_obj(self, request: Request, name: str, obj: Any) -> bool:
        if name == "return_book":
            return loan_rules.can_return(obj)
        if name == "extend":
            today = clock.today(self.desk.settings.timezone)
            return loan_rules.may_extend(obj, today=today, settings=self.desk.settings)
        return await super().is_row_action_allowed_for_obj(request, name, obj)

    def _return_form(self, request: Request, borrowing: Any) -> str:
        """What the confirmation names: the book, the member, and what is still unpaid."""
        settings = self.desk.settings
        today = clock.today(settings.timezone)
        member = borrowing.user
        who = f"{member.first_name} {member.last_name}".strip()
        lines = [
            Markup(
                "<p class='return-what'>«{}» by {}, lent to <strong>{}</strong> {} "
                "on {}, due {}.</p>"
            ).format(
                borrowing.book.title,
                borrowing.book.author,
                who or member.email,
                f"<{member.email}>" if who else "",
                borrowing.borrow_date,
                borrowing.expected_return_date,
            )
        ]
        fine = loan_rules.fine(borrowing, borrowing.book, today=today, settings=settings)
        if fine is not None:
            late = loan_rules.days_late(borrowing, today=today)
            lines.append(
                Markup(
                    "<div class='alert alert-warning return-fine'>{} day(s) late: a FINE of ${} "
                    "is added, with its checkout link.</div>"
                ).format(late, fine)
            )
        for payment in borrowing.payments:
            if payment_rules.is_unpaid(payment):
                what = "fine" if payment.type == PaymentType.FINE.value else "borrowing fee"
                lines.append(
                    Markup(
                        "<div class='alert alert-danger return-unpaid'>Unpaid {} of ${} ({}): "
                        "take it now or waive it.</div>"
                    ).format(what, payment.money_to_pay, payment.status)
                )
        return str(Markup("").join(lines))

    @row_action(
        name="return_book",
        text="Return",
        confirmation="Record the return of this book today?",
        submit_btn_text="Record the return",
        icon_class="fa fa-rotate-left",
        action_btn_class="btn btn-outline-primary",
        modal_size="md",  # its form names the book and the member: _return_form
    )
    async def return_book(self, request: Request, pk: Any) -> None:
        """POST /api/borrowings/{id}/return/, made by the signed-in staff member."""
        with refusal_fails_action():
            borrowing = await self.desk.borrowings(request).return_book(
                int(pk), signed_in_staff(request)
            )
        fines = [p for p in borrowing.payments if p.type == PaymentType.FINE.value]
        if not fines:
            flash(request, f"Borrowing #{borrowing.id} returned on time.", "success")
            return
        fine = fines[-1]
        link = fine.session_url or "none yet: Stripe was unreachable, it follows shortly"
        flash(
            request,
            f"Borrowing #{borrowing.id} returned late: FINE of ${fine.money_to_pay}, "
            f"checkout link {link}",
            "warning",
        )

    def _extend_form(self, request: Request, borrowing: Any) -> str:
        settings = self.desk.settings
        today = clock.today(settings.timezone)
        latest = today + timedelta(days=settings.MAX_BORROW_DAYS)
        offered = min(
            borrowing.expected_return_date + timedelta(days=settings.DEFAULT_LOAN_DAYS), latest
        )
        return str(
            Markup(
                "<form><p>«{}», due {}. The added days are charged as a new payment.</p>"
                "<label class='form-label' for='extend-until'>New due date</label>"
                "<input class='form-control' type='date' id='extend-until' "
                "name='expected_return_date' value='{}' min='{}' max='{}' required></form>"
            ).format(
                borrowing.book.title,
                borrowing.expected_return_date,
                offered,
                borrowing.expected_return_date + timedelta(days=1),
                latest,
            )
        )

    @row_action(
        name="extend",
        text="Extend",
        confirmation="Move the due date later?",
        submit_btn_text="Extend the loan",
        icon_class="fa fa-calendar-plus",
        action_btn_class="btn btn-outline-secondary",
        modal_size="md",  # its form asks the date: _extend_form
    )
    async def extend(self, request: Request, pk: Any) -> None:
        """POST /api/borrowings/{id}/extend/, made by the signed-in staff member."""
        form = await request.form()
        try:
            data = BorrowingExtend.model_validate(
                {"expected_return_date": form.get("expected_return_date")}
            )
        except ValidationError as exc:
            raise ActionFailed("Pick the new due date.") from exc
        with refusal_fails_action():
            borrowing = await self.desk.borrowings(request).extend(
                int(pk), signed_in_staff(request), data
            )
        fee = borrowing.payments[-1]
        flash(
            request,
            f"Borrowing #{borrowing.id} extended to {borrowing.expected_return_date}: "
            f"${fee.money_to_pay} to pay, checkout link {fee.session_url}",
            "success",
        )


class PaymentView(ReadOnlyDeskView):
    key = "payments"
    menu_label = "Payments"
    display_name = "Payment"
    icon = "fa fa-credit-card"
    list_template = "admin/list_with_tabs.html"
    fields = [
        IntegerField("id", label="#"),
        NamedHasOne("borrowing", key="borrowings", label="Borrowing"),
        StringField(
            "member",
            label="Member",
            read_only=True,
            searchable=False,
            orderable=False,
            getter=lambda request, payment: payment.borrowing.user.email,
        ),
        EnumField("type", enum=PaymentType),
        EnumField(
            "status",
            enum=PaymentStatus,
            list_template="admin/fields/status.html",
            detail_template="admin/fields/status.html",
        ),
        DecimalField(
            "money_to_pay",
            label="Amount",
            list_template="admin/fields/money.html",
            detail_template="admin/fields/money.html",
        ),
        EnumField(
            "method",
            choices=[
                (PaymentMethod.CARD.value, "Card"),
                (PaymentMethod.CASH.value, "Cash"),
                (PaymentMethod.WAIVED.value, "Waived"),
            ],
            label="Paid by",
        ),
        URLField("session_url", label="Checkout link", exclude_from_list=True),
        DateTimeField("created_at", label="Created", output_format=DATETIME),
        DateTimeField("paid_at", label="Paid", exclude_from_list=True, output_format=DATETIME),
        NamedHasOne("recorder", key="members", label="Recorded by", exclude_from_list=True),
    ]
    sortable_fields = ["id", "type", "status", "money_to_pay", "created_at"]
    fields_default_sort = [("id", True)]
    quick_filters = [
        ("All", ""),
        ("Unpaid fines", f"type__eq=FINE AND status__in={','.join(payment_rules.UNPAID_STATUSES)}"),
        ("Expired", "status__eq=EXPIRED"),
        ("Pending", "status__eq=PENDING"),
        ("Paid", "status__eq=PAID"),
        ("Waived", "status__eq=WAIVED"),
    ]

    def __init__(self, desk: Desk) -> None:
        super().__init__(desk, Payment)

    def get_list_query(self, request: Request) -> Any:
        statement = select(Payment).options(
            joinedload(Payment.borrowing).joinedload(Borrowing.user)
        )
        if MEMBER_PARAM in request.query_params:
            statement = statement.join(Payment.borrowing)
        return _member_scope(request, statement, Borrowing.user_id)

    def get_count_query(self, request: Request) -> Any:
        statement = super().get_count_query(request)
        if MEMBER_PARAM in request.query_params:
            statement = statement.join(Borrowing, Borrowing.id == Payment.borrowing_id)
        return _member_scope(request, statement, Borrowing.user_id)

    def get_search_query(self, request: Request, term: str) -> Any:
        """The member's email, or the Stripe session id."""
        return or_(
            Payment.borrowing.has(Borrowing.user.has(member_search(term))),
            text_search(term, Payment.session_id),
        )

    async def repr(self, obj: Any, request: Request) -> str:
        return f"{obj.type} #{obj.id}"

    async def is_row_action_allowed_for_obj(self, request: Request, name: str, obj: Any) -> bool:
        if name == "new_checkout_link":
            return payment_rules.can_renew(obj, now=clock.now())
        if name in ("paid_in_cash", "waive"):
            return payment_rules.is_unpaid(obj)
        return await super().is_row_action_allowed_for_obj(request, name, obj)

    @row_action(
        name="paid_in_cash",
        text="Paid in cash",
        confirmation="Record this payment as paid in cash now? Its checkout link stops working.",
        submit_btn_text="Paid in cash",
        submit_btn_class="btn btn-success",
        icon_class="fa fa-money-bill",
        action_btn_class="btn btn-outline-success",
    )
    async def paid_in_cash(self, request: Request, pk: Any) -> None:
        """POST /api/payments/{id}/cash/, made by the signed-in staff member."""
        with refusal_fails_action():
            payment = await self.desk.payments(request).take_cash(int(pk), signed_in_staff(request))
        flash(request, f"Payment #{payment.id}: ${payment.money_to_pay} paid in cash.", "success")

    @row_action(
        name="waive",
        text="Waive",
        confirmation="Waive this payment? Nothing is owed on it afterwards.",
        submit_btn_text="Waive",
        submit_btn_class="btn btn-warning",
        icon_class="fa fa-hand-holding-heart",
        action_btn_class="btn btn-outline-warning",
        form=(
            "<form><label class='form-label mt-2' for='waive-reason'>Reason (required)</label>"
            "<textarea class='form-control' id='waive-reason' name='reason' rows='3' "
            f"maxlength='{payment_rules.MAX_WAIVER_REASON}' required></textarea></form>"
        ),
        modal_size="md",
    )
    async def waive(self, request: Request, pk: Any) -> None:
        """POST /api/payments/{id}/waive/, made by the signed-in staff member."""
        reason = (await request.form()).get("reason")
        with refusal_fails_action():
            payment = await self.desk.payments(request).waive(
                int(pk), signed_in_staff(request), reason if isinstance(reason, str) else None
            )
        flash(request, f"Payment #{payment.id} (${payment.money_to_pay}) waived.", "success")

    @row_action(
        name="new_checkout_link",
        text="New checkout link",
        confirmation="Open a new Stripe checkout session for this payment?",
        submit_btn_text="Make the link",
        icon_class="fa fa-link",
        action_btn_class="btn btn-outline-primary",
    )
    async def new_checkout_link(self, request: Request, pk: Any) -> None:
        """POST /api/payments/{id}/renew/, made by the signed-in staff member."""
        with refusal_fails_action():
            payment = await self.desk.payments(request).renew(int(pk), signed_in_staff(request))
        flash(
            request,
            f"Payment #{payment.id} is {payment.status}: checkout link {payment.session_url}",
            "success",
        )
