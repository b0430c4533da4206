"""Activity: the record of staff actions (table `audit_log`), newest first, read-only; the
database itself refuses to change a row of it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, or_, select
from starlette.requests import Request
from starlette_admin import DateTimeField, EnumField, IntegerField, JSONField, StringField

from library_service.admin.desk import Desk
from library_service.admin.views.base import DATETIME, NamedHasOne, ReadOnlyDeskView
from library_service.core.audit import AuditAction, AuditTarget
from library_service.core.search import member_search, text_search
from library_service.models import AuditEntry

# ?member=<user id> / ?book=<book id>: one member's or one book's activity
SCOPES = {"member": AuditEntry.member_id, "book": AuditEntry.book_id}

ACTION_LABELS = {
    AuditAction.BOOK_CREATE: "Book added",
    AuditAction.BOOK_UPDATE: "Book edited",
    AuditAction.BOOK_WITHDRAW: "Book withdrawn",
    AuditAction.BOOK_REINSTATE: "Book reinstated",
    AuditAction.BOOK_DELETE: "Book deleted",
    AuditAction.MEMBER_UPDATE: "Member edited",
    AuditAction.MEMBER_ACTIVATE: "Member reactivated",
    AuditAction.MEMBER_DEACTIVATE: "Member deactivated",
    AuditAction.MEMBER_GRANT_STAFF: "Made staff",
    AuditAction.MEMBER_REVOKE_STAFF: "Staff access revoked",
    AuditAction.BORROWING_CREATE: "Lent",
    AuditAction.BORROWING_EXTEND: "Loan extended",
    AuditAction.BORROWING_RETURN: "Returned",
    AuditAction.HOLD_CANCEL: "Hold cancelled",
    AuditAction.PAYMENT_CASH: "Paid in cash",
    AuditAction.PAYMENT_WAIVE: "Waived",
    AuditAction.PAYMENT_RENEW: "New checkout link",
    AuditAction.MESSAGE_SEND_AGAIN: "Message sent again",
    AuditAction.NOTICE_SEND_AGAIN: "E-mail sent again",
}
# The admin list each kind of target is shown in.
TARGET_VIEWS = {
    AuditTarget.BOOK.value: "books",
    AuditTarget.MEMBER.value: "members",
    AuditTarget.BORROWING.value: "borrowings",
    AuditTarget.HOLD.value: "holds",
    AuditTarget.PAYMENT.value: "payments",
    AuditTarget.MESSAGE.value: "messages",
    AuditTarget.NOTICE.value: "member-notices",
}


def _scoped(request: Request, statement: Select[Any]) -> Select[Any]:
    for name, column in SCOPES.items():
        value = request.query_params.get(name, "")
        if value.isdigit() and len(value) < 11:
            statement = statement.where(column == int(value))
    return statement


class ActivityView(ReadOnlyDeskView):
    key = "activity"
    menu_label = "Activity"
    display_name = "Staff action"
    icon = "fa fa-clock-rotate-left"
    list_template = "admin/list_with_tabs.html"
    fields = [
        IntegerField("id", label="#"),
        DateTimeField("created_at", label="When", output_format=DATETIME),
        NamedHasOne("actor", key="members", label="Staff"),
        EnumField(
            "action",
            choices=[(action.value, label) for action, label in ACTION_LABELS.items()],
        ),
        JSONField(
            "target",
            label="Target",
            read_only=True,
            searchable=False,
            orderable=False,
            getter=lambda request, entry: {
                "type": entry.target_type,
                "id": entry.target_id,
                "view": TARGET_VIEWS[entry.target_type],
            },
            exclude_from_export=True,
            list_template="admin/fields/audit_target.html",
            detail_template="admin/fields/audit_target.html",
        ),
        JSONField(
            "changes",
            label="Changes",
            read_only=True,
            searchable=False,
            orderable=False,
            exclude_from_export=True,
            list_template="admin/fields/audit_changes.html",
            detail_template="admin/fields/audit_changes.html",
        ),
        StringField("reason", label="Reason"),
    ]
    sortable_fields = ["id", "created_at", "action"]
    fields_default_sort = [("id", True)]
    quick_filters = [
        ("All", ""),
        ("Loans", "action__in=borrowing.create,borrowing.extend,borrowing.return"),
        ("Payments", "action__in=payment.cash,payment.waive,payment.renew"),
        ("Books", "action__in=book.create,book.update,book.withdraw,book.reinstate,book.delete"),
        (
            "Members",
            "action__in=member.update,member.activate,member.deactivate,member.grant_staff,"
            "member.revoke_staff",
        ),
        ("Holds and messages", "action__in=hold.cancel,message.send_again,notice.send_again"),
    ]
    exporters: Any = ["csv"]

    def __init__(self, desk: Desk) -> None:
        super().__init__(desk, AuditEntry)

    def get_list_query(self, request: Request) -> Any:
        return _scoped(request, select(AuditEntry))

    def get_count_query(self, request: Request) -> Any:
        return _scoped(request, super().get_count_query(request))

    def get_search_query(self, request: Request, term: str) -> Any:
        """The staff member's email or name, the action, or the reason."""
        return or_(
            AuditEntry.actor.has(member_search(term)),
            text_search(term, AuditEntry.action, AuditEntry.reason),
        )

    async def repr(self, obj: Any, request: Request) -> str:
        return f"Staff action #{obj.id}"
