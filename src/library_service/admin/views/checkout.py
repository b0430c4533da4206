"""The Check-out page: find the member (full name, email or #id) and the book (title, author
or ISBN), pick the due date, lend through BorrowingService.borrow exactly as
`POST /api/borrowings/` with `user` does, then take the fee in cash or hand over its link."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette_admin.routing import route
from starlette_admin.views import CustomView

from library_service.admin.desk import Desk, signed_in_staff
from library_service.books.schemas import BookFilters
from library_service.borrowings import rules as loan_rules
from library_service.borrowings.schemas import BorrowingCreate
from library_service.core import clock
from library_service.core.errors import AppError
from library_service.core.pagination import PageParams
from library_service.models import PaymentType, User
from library_service.users.schemas import MemberFilters

CANDIDATES = PageParams(limit=10, offset=0)


def _form_id(value: object) -> int | None:
    text = value if isinstance(value, str) else ""
    return int(text) if text.isdigit() and len(text) < 10 else None


class CheckoutView(CustomView):
    def __init__(self, desk: Desk) -> None:
        super().__init__(
            menu_label="Check out",
            icon="fa fa-cart-arrow-down",
            path="/checkout",
            route_name="checkout",
        )
        self.desk = desk

    def _render(self, request: Request, **context: Any) -> Response:
        assert self._admin is not None
        today = clock.today(self.desk.settings.timezone)
        context.setdefault(
            "due", loan_rules.desk_due_date(today=today, settings=self.desk.settings)
        )
        return self._admin._template_response(
            request=request,
            name="admin/checkout.html",
            context={"title": "Check out", "today": today, **context},
            status_code=context.pop("status_code", 200),
        )

    async def _members(self, term: str) -> list[User]:
        """By #id, or by email or full name."""
        users = self.desk.users()
        member_id = _form_id(term.lstrip("#").strip())
        if member_id is not None:
            try:
                return [await users.get_profile(member_id)]
            except AppError:
                return []
        found, _ = await users.list_members(MemberFilters(search=term), CANDIDATES)
        return list(found)

    async def _books(self, term: str) -> list[Any]:
        found, _ = await self.desk.books().list_books(
            BookFilters(search=term, ordering="title"), CANDIDATES
        )
        return list(found)

    async def _search_context(self, params: Any) -> dict[str, Any]:
        member_q = str(params.get("member_q", "")).strip()[:200]
        book_q = str(params.get("book_q", "")).strip()[:200]
        return {
            "member_q": member_q,
            "book_q": book_q,
            "members": await self._members(member_q) if member_q else None,
            "books": await self._books(book_q) if book_q else None,
            "chosen_user": _form_id(params.get("user")),
            "chosen_book": _form_id(params.get("book")),
        }

    @route("")
    async def index(self, request: Request) -> Response:
        return self._render(request, **await self._search_context(request.query_params))

    @route("/lend", methods=["POST"], name="lend")
    async def lend(self, request: Request) -> Response:
        form = await request.form()
        context = await self._search_context(form)
        try:
            data = BorrowingCreate.model_validate(
                {  # a form's fields are strings; the API's body takes JSON numbers
                    "book": _form_id(form.get("book")),
                    "user": _form_id(form.get("user")),
                    "expected_return_date": form.get("due"),
                }
            )
        except ValidationError:
            return self._render(
                request,
                **context,
                error="Pick a member, a book and a due date.",
                status_code=400,
            )
        try:
            borrowing = await self.desk.borrowings(request).borrow(signed_in_staff(request), data)
        except AppError as exc:
            return self._render(
                request,
                **context,
                due=data.expected_return_date,
                error=exc.message,
                status_code=400,
            )
        fee = next(p for p in borrowing.payments if p.type == PaymentType.PAYMENT.value)
        member = await self.desk.users().get_profile(borrowing.user_id)
        return self._render(request, lent=borrowing, fee=fee, member=member)

    @route("/cash", methods=["POST"], name="cash")
    async def cash(self, request: Request) -> Response:
        """The fee just charged, paid in cash at the counter."""
        return await self._settle(request, cash=True)

    @route("/link", methods=["POST"], name="link")
    async def link(self, request: Request) -> Response:
        """The fee's checkout link, handed to the member to pay on their phone."""
        return await self._settle(request, cash=False)

    async def _settle(self, request: Request, *, cash: bool) -> Response:
        form = await request.form()
        payment_id = _form_id(form.get("payment"))
        if payment_id is None:
            return self._render(request, error="No payment was named.", status_code=400)
        payments = self.desk.payments(request)
        staff = signed_in_staff(request)
        try:
            if cash:
                payment = await payments.take_cash(payment_id, staff)
            else:
                payment = await payments.send_payment_link(payment_id, staff)
        except AppError as exc:
            return self._render(request, error=exc.message, status_code=400)
        summary = await payments.summary(payment_id)
        return self._render(request, settled=payment, summary=summary, cash=cash)
