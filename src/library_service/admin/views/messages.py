"""The two outboxes, read-only: staff messages (table `notifications`) and members' notices
(table `member_notices`). A FAILED one can be sent again, alone or a selection at once; the
service queues its delivery once the change commits, and puts it on record."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Protocol

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
from starlette_admin.flash import flash

from library_service.admin.desk import Desk, signed_in_staff
from library_service.admin.views.base import DATETIME, ReadOnlyDeskView, for_each_row
from library_service.core.search import text_search
from library_service.models import MemberNotice, NoticeStatus, Notification, NotificationStatus

QUEUED = "queued to be sent again"
# What each kind of message is about, as the list shows it.
KINDS = {
    "borrowing_created": "New borrowing",
    "borrowing_extended": "Loan extended",
    "borrowing_returned": "Return",
    "hold_ready": "Hold ready",
    "hold_expired": "Hold expired",
    "hold_cancelled": "Hold cancelled",
    "overdue": "Overdue report",
    "holds": "Holds report",
    "payment_paid": "Payment received",
}


class Resender(Protocol):
    async def send_again(self, row_id: int, /, *, staff_id: int) -> None: ...


class OutboxView(ReadOnlyDeskView):
    """What both outboxes' views share: Send again, for a FAILED row or a selection."""

    noun: ClassVar[str]  # "Message", "Notice"

    def outbox(self) -> Resender:
        raise NotImplementedError

    async def repr(self, obj: Any, request: Request) -> str:
        return f"{self.noun} #{obj.id}"

    def _sender(self, request: Request) -> Callable[[int], Awaitable[None]]:
        """Sends one row again, on record as the signed-in staff member's doing."""
        outbox, staff_id = self.outbox(), signed_in_staff(request).id

        async def send_again(row_id: int) -> None:
            await outbox.send_again(row_id, staff_id=staff_id)

        return send_again

    async def is_row_action_allowed_for_obj(self, request: Request, name: str, obj: Any) -> bool:
        if name == "send_again":
            return bool(obj.status == NoticeStatus.FAILED.value)  # the same word in both
        return await super().is_row_action_allowed_for_obj(request, name, obj)

    @row_action(
        name="send_again",
        text="Send again",
        icon_class="fa fa-paper-plane",
        action_btn_class="btn btn-outline-primary",
    )
    async def send_again(self, request: Request, pk: Any) -> None:
        await for_each_row([pk], self._sender(request), done=QUEUED)
        flash(request, f"{self.noun} #{pk} is queued to be sent again.", "success")

    @action(
        name="send_again_selected",
        text="Send the selected failed ones again",
        icon_class="fa fa-paper-plane",
    )
    async def send_again_selected(self, request: Request, selection: ActionSelection) -> None:
        sent = await for_each_row(await selection.pks(), self._sender(request), done=QUEUED)
        flash(request, f"{sent} {self.noun.lower()}(s) queued to be sent again.", "success")


class StaffMessageView(OutboxView):
    """Staff messages: what each is about, its status, attempts and last error."""

    noun = "Message"
    key = "messages"
    menu_label = "Staff messages"
    display_name = "Staff message"
    icon = "fa fa-envelope"
    list_template = "admin/list_with_tabs.html"
    fields = [
        IntegerField("id", label="#"),
        StringField(
            "kind",
            read_only=True,
            getter=lambda request, message: KINDS.get(
                message.kind, message.kind.replace("_", " ").capitalize()
            ),
        ),
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

    def get_search_query(self, request: Request, term: str) -> Any:
        return text_search(term, Notification.text, Notification.last_error)

    def outbox(self) -> Resender:
        return self.desk.messages()


class MemberNoticeView(OutboxView):
    """Member notices: each with its e-mail's status, address and last error."""

    noun = "Notice"
    key = "member-notices"
    menu_label = "Member notices"
    display_name = "Member notice"
    icon = "fa fa-at"
    list_template = "admin/list_with_tabs.html"
    fields = [
        IntegerField("id", label="#"),
        IntegerField("user_id", label="Member #"),
        StringField("to_address", label="To"),
        StringField("kind"),
        StringField("subject"),
        EnumField(
            "status",
            enum=NoticeStatus,
            list_template="admin/fields/status.html",
            detail_template="admin/fields/status.html",
        ),
        IntegerField("attempts"),
        TextAreaField("body", label="Text", exclude_from_list=True),
        StringField("last_error", label="Last error"),
        DateTimeField("created_at", label="Written", output_format=DATETIME),
        DateTimeField("sent_at", label="Sent", exclude_from_list=True, output_format=DATETIME),
        DateTimeField(
            "read_at", label="Read in the app", exclude_from_list=True, output_format=DATETIME
        ),
    ]
    sortable_fields = ["id", "user_id", "kind", "status", "attempts", "created_at"]
    fields_default_sort = [("id", True)]
    quick_filters = [
        ("All", ""),
        ("Failed", "status__eq=FAILED"),
        ("Pending", "status__eq=PENDING"),
        ("Sent", "status__eq=SENT"),
        ("Not e-mailed", "status__eq=SKIPPED"),
    ]

    def __init__(self, desk: Desk) -> None:
        super().__init__(desk, MemberNotice)

    def get_search_query(self, request: Request, term: str) -> Any:
        return text_search(
            term, MemberNotice.to_address, MemberNotice.subject, MemberNotice.last_error
        )

    def outbox(self) -> Resender:
        services = self.desk.services
        return services.notices(services.unit_of_work())
