"""Staff messages: the outbox (table `notifications`), read-only; a FAILED message can be sent
again through NotificationService, which queues its delivery once the change commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_
from starlette.requests import Request
from starlette_admin import (
    ActionSelection,
    DateTimeField,
    EnumField,
    IntegerField,
    StringField,
    TextAreaField,
    action,
    row_action,
)
from starlette_admin.exceptions import ActionFailed
from starlette_admin.flash import flash

from library_service.admin.desk import Desk
from library_service.admin.views.base import DATETIME, DeskView, contains
from library_service.core.errors import AppError
from library_service.models import Notification, NotificationStatus


class StaffMessageView(DeskView):
    key = "messages"
    menu_label = "Staff messages"
    display_name = "Staff message"
    icon = "fa fa-envelope"
    list_template = "admin/list_with_tabs.html"
    fields = [
        IntegerField("id", label="#"),
        StringField("kind"),
        EnumField(
            "status",
            enum=NotificationStatus,
            list_template="admin/fields/status.html",
            detail_template="admin/fields/status.html",
        ),
        IntegerField("attempts"),
        TextAreaField("text", label="Message", exclude_from_list=True),
        StringField("last_error", label="Last error"),
        DateTimeField("created_at", label="Written", output_format=DATETIME),
        DateTimeField(
            "next_attempt_at", label="Next attempt", exclude_from_list=True, output_format=DATETIME
        ),
        DateTimeField("sent_at", label="Sent", exclude_from_list=True, output_format=DATETIME),
    ]
    sortable_fields = ["id", "kind", "status", "attempts", "created_at", "sent_at"]
    fields_default_sort = [("id", True)]
    quick_filters = [
        ("All", ""),
        ("Failed", "status__eq=FAILED"),
        ("Pending", "status__eq=PENDING"),
        ("Sent", "status__eq=SENT"),
    ]

    def __init__(self, desk: Desk) -> None:
        super().__init__(desk, Notification)

    def can_create(self, request: Request) -> bool:
        return False

    def can_edit(self, request: Request) -> bool:
        return False

    def can_delete(self, request: Request) -> bool:
        return False

    def get_search_query(self, request: Request, term: str) -> Any:
        pattern = contains(term)
        return or_(
            Notification.text.ilike(pattern, escape="\\"),
            Notification.last_error.ilike(pattern, escape="\\"),
        )

    async def repr(self, obj: Any, request: Request) -> str:
        return f"Message #{obj.id}"

    async def is_row_action_allowed_for_obj(self, request: Request, name: str, obj: Any) -> bool:
        if name == "send_again":
            return bool(obj.status == NotificationStatus.FAILED.value)
        return await super().is_row_action_allowed_for_obj(request, name, obj)

    async def _send_again(self, pks: list[Any]) -> tuple[int, list[str]]:
        messages = self.desk.messages()
        sent, refusals = 0, []
        for pk in pks:
            try:
                await messages.send_again(int(pk))
                sent += 1
            except AppError as exc:
                refusals.append(f"#{pk}: {exc.message}")
        return sent, refusals

    @row_action(
        name="send_again",
        text="Send again",
        icon_class="fa fa-paper-plane",
        action_btn_class="btn btn-outline-primary",
    )
    async def send_again(self, request: Request, pk: Any) -> None:
        _, refusals = await self._send_again([pk])
        if refusals:
            raise ActionFailed(" ".join(refusals))
        flash(request, f"Message #{pk} is queued to be sent again.", "success")

    @action(
        name="send_again_selected",
        text="Send the selected failed messages again",
        icon_class="fa fa-paper-plane",
    )
    async def send_again_selected(self, request: Request, selection: ActionSelection) -> None:
        sent, refusals = await self._send_again(await selection.pks())
        if refusals:
            done = f"{sent} queued to be sent again. " if sent else ""
            raise ActionFailed(done + " ".join(refusals))
        flash(request, f"{sent} message(s) queued to be sent again.", "success")
