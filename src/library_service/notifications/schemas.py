from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from library_service.core.config import Settings
from library_service.models import MemberNotice
from library_service.notifications.notices import TOKEN, resolve_link


class NoticeFact(BaseModel):
    label: str
    value: str


class NoticeRead(BaseModel):
    id: int
    kind: str = Field(description="hold_ready, due_soon, overdue, fine, receipt, welcome, …")
    subject: str
    body: str
    facts: list[NoticeFact]
    link: str | None = Field(description="The page the notice points to, if any.")
    link_label: str | None
    email_status: str = Field(
        description="PENDING, SENT, FAILED, or SKIPPED (not e-mailed: a reminder opted out of)."
    )
    created_at: datetime
    read_at: datetime | None

    @classmethod
    def of(cls, notice: MemberNotice, settings: Settings, *, base_url: str) -> NoticeRead:
        link = resolve_link(notice.link_path, notice.frontend_path, settings, base_url=base_url)
        if link is not None and TOKEN in link:
            link = None  # a password link's token is only ever in the e-mail
        return cls(
            id=notice.id,
            kind=notice.kind,
            subject=notice.subject,
            body=notice.body,
            facts=[NoticeFact(label=label, value=value) for label, value in notice.facts],
            link=link,
            link_label=notice.link_label if link else None,
            email_status=notice.status,
            created_at=notice.created_at,
            read_at=notice.read_at,
        )


class UnreadCount(BaseModel):
    unread: int


class MarkedRead(BaseModel):
    marked: int
