"""Members: every user account; access changes through UserService.update_member, the
method PATCH /api/users/{id}/ calls, with the same self-protection and last-staff rules.
"New member" enrols one as staff do through POST /api/users/ without a password: the member
is e-mailed a link to choose theirs."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette_admin import (
    BooleanField,
    DateTimeField,
    EmailField,
    IntegerField,
    StringField,
    row_action,
)
from starlette_admin.flash import flash
from starlette_admin.types import RequestAction

from library_service.admin.desk import Desk, signed_in_staff
from library_service.admin.views.base import (
    DATE,
    DeskView,
    refusal_fails_action,
    refused_form,
    validated,
)
from library_service.audit.schemas import AuditFilters
from library_service.borrowings.schemas import BorrowingFilters
from library_service.core.errors import AppError
from library_service.core.pagination import PageParams
from library_service.core.search import member_search
from library_service.models import User
from library_service.payments.schemas import PaymentFilters
from library_service.users import rules
from library_service.users.schemas import MemberPatch, UserCreate

HISTORY_ROWS = 100  # a member's page lists this many of their latest borrowings and payments

# Row actions: (name, button text, the change, who it applies to)
ACCESS_CHANGES: dict[str, tuple[str, MemberPatch]] = {
    "deactivate": ("deactivated", MemberPatch(is_active=False)),
    "reactivate": ("reactivated", MemberPatch(is_active=True)),
    "grant_staff": ("made staff", MemberPatch(is_staff=True)),
    "revoke_staff": ("no longer staff", MemberPatch(is_staff=False)),
}


class MemberView(DeskView):
    key = "members"
    menu_label = "Members"
    display_name = "Member"
    icon = "fa fa-users"
    detail_template = "admin/member_detail.html"
    fields = [
        IntegerField("id", label="#", exclude_from_edit=True, exclude_from_create=True),
        EmailField("email", exclude_from_edit=True, required=True),
        StringField("first_name", maxlength=150),
        StringField("last_name", maxlength=150),
        BooleanField("is_active", label="Active", exclude_from_create=True),
        BooleanField("is_staff", label="Staff", exclude_from_create=True),
        DateTimeField(
            "date_joined",
            label="Joined",
            exclude_from_edit=True,
            exclude_from_create=True,
            output_format=DATE,
        ),
    ]
    sortable_fields = ["id", "email", "first_name", "last_name", "date_joined"]
    fields_default_sort = ["id"]

    def __init__(self, desk: Desk) -> None:
        super().__init__(desk, User)

    def can_create(self, request: Request) -> bool:
        return True  # enrolment at the desk: the member chooses a password from the e-mail

    async def create(self, request: Request, data: dict[str, Any]) -> Any:
        member = validated(
            UserCreate,
            {
                "email": data.get("email") or "",
                "first_name": data.get("first_name") or "",
                "last_name": data.get("last_name") or "",
            },
        )
        try:
            user = await self.desk.users().register(member, enrolled_by_staff=True)
        except AppError as exc:
            raise refused_form(request, exc, field="email") from exc
        flash(
            request,
            f"{user.email} is enrolled and e-mailed a link to choose a password.",
            "success",
        )
        return user

    def can_delete(self, request: Request) -> bool:
        return False  # a member's borrowings and payments keep their account: deactivate it

    def get_search_query(self, request: Request, term: str) -> Any:
        return member_search(term)

    async def repr(self, obj: Any, request: Request) -> str:
        return str(obj.email)

    async def find_by_pk(self, request: Request, pk: Any) -> Any:
        user = await super().find_by_pk(request, pk)
        if user is not None and request.state.action == RequestAction.DETAIL:
            request.state.member_history = await self._history(request, user.id)
        return user

    async def _history(self, request: Request, user_id: int) -> dict[str, Any]:
        """The member's latest borrowings and payments, as staff see them in the API."""
        staff = signed_in_staff(request)
        page = PageParams(limit=HISTORY_ROWS, offset=0)
        borrowings, borrowing_count = await self.desk.borrowings(request).list_borrowings(
            staff, BorrowingFilters(user_id=user_id), page
        )
        payments, payment_count = await self.desk.payments(request).list_payments(
            staff, PaymentFilters(user_id=user_id), page
        )
        desk = self.desk.figures()
        activity, activity_count = await self.desk.audit().list_entries(
            AuditFilters(member_id=user_id), page
        )
        return {
            "borrowings": borrowings,
            "borrowing_count": borrowing_count,
            "payments": payments,
            "payment_count": payment_count,
            "holds": await desk.holds_of_member(user_id),
            "owed": await desk.owed(user_id),
            "activity": activity,
            "activity_count": activity_count,
        }

    async def edit(self, request: Request, pk: Any, data: dict[str, Any]) -> Any:
        submitted = validated(MemberPatch, data).model_dump(exclude_unset=True)
        current = await super().find_by_pk(request, pk)
        # Only what the librarian changed: an untouched "Staff" box is no demotion.
        changes = MemberPatch(
            **{name: value for name, value in submitted.items() if getattr(current, name) != value}
        )
        try:
            return await self.desk.users().update_member(signed_in_staff(request), int(pk), changes)
        except AppError as exc:
            raise refused_form(request, exc) from exc

    async def is_row_action_allowed_for_obj(self, request: Request, name: str, obj: Any) -> bool:
        if name in ACCESS_CHANGES:
            change = ACCESS_CHANGES[name][1]
            applies = (change.is_active is None or obj.is_active != change.is_active) and (
                change.is_staff is None or obj.is_staff != change.is_staff
            )
            actor_id = signed_in_staff(request).id
            return applies and rules.may_change_access(
                actor_id=actor_id, user_id=obj.id, change=change
            )
        return await super().is_row_action_allowed_for_obj(request, name, obj)

    async def _change_access(self, request: Request, pk: Any, name: str) -> None:
        done, change = ACCESS_CHANGES[name]
        with refusal_fails_action():
            user = await self.desk.users().update_member(signed_in_staff(request), int(pk), change)
        flash(request, f"{await self.repr(user, request)} is {done}.", "success")

    @row_action(
        name="deactivate",
        text="Deactivate",
        confirmation="Deactivate this account? Its sign-ins and tokens stop working at once.",
        submit_btn_text="Deactivate",
        submit_btn_class="btn btn-danger",
        icon_class="fa fa-user-slash",
        action_btn_class="btn btn-outline-danger",
    )
    async def deactivate(self, request: Request, pk: Any) -> None:
        await self._change_access(request, pk, "deactivate")

    @row_action(
        name="reactivate",
        text="Reactivate",
        icon_class="fa fa-user-check",
        action_btn_class="btn btn-outline-success",
    )
    async def reactivate(self, request: Request, pk: Any) -> None:
        await self._change_access(request, pk, "reactivate")

    @row_action(
        name="grant_staff",
        exclude_from_list=True,  # on the member's page: the list keeps its columns visible
        text="Make staff",
        confirmation="Make this account library staff? It can then use this admin.",
        submit_btn_text="Make staff",
        icon_class="fa fa-user-shield",
        action_btn_class="btn btn-outline-primary",
    )
    async def grant_staff(self, request: Request, pk: Any) -> None:
        await self._change_access(request, pk, "grant_staff")

    @row_action(
        name="revoke_staff",
        exclude_from_list=True,  # on the member's page: the list keeps its columns visible
        text="Revoke staff",
        confirmation="Take staff access away from this account?",
        submit_btn_text="Revoke staff",
        submit_btn_class="btn btn-danger",
        icon_class="fa fa-user-minus",
        action_btn_class="btn btn-outline-warning",
    )
    async def revoke_staff(self, request: Request, pk: Any) -> None:
        await self._change_access(request, pk, "revoke_staff")
