from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from library_service.core.audit import AuditAction, AuditTarget


class AuditEntryRead(BaseModel):
    """One staff action: who, when, what it changed (before → after) and why."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    actor_id: int
    actor_email: str
    action: AuditAction
    target_type: AuditTarget
    target_id: int
    member_id: int | None = Field(description="The member the action concerns, if any.")
    book_id: int | None = Field(description="The book the action concerns, if any.")
    changes: dict[str, Any] = Field(description="{field: [before, after]}")
    reason: str | None


@dataclass(frozen=True, slots=True)
class AuditFilters:
    actor_id: int | None = None
    action: AuditAction | None = None
    target_type: AuditTarget | None = None
    target_id: int | None = None
    member_id: int | None = None
    book_id: int | None = None
    since: date | None = None  # library dates, both included
    until: date | None = None
