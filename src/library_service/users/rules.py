"""The account rules that staff's changes answer to."""

from __future__ import annotations

from library_service.users.errors import OwnAccessError
from library_service.users.schemas import MemberPatch


def may_change_access(*, actor_id: int, user_id: int, change: MemberPatch) -> bool:
    """Nobody deactivates themselves or takes their own staff access away (the last active
    staff account keeping its access is checked under lock, in the service)."""
    return not (change.removes_access and user_id == actor_id)


def check_may_change_access(*, actor_id: int, user_id: int, change: MemberPatch) -> None:
    if not may_change_access(actor_id=actor_id, user_id=user_id, change=change):
        raise OwnAccessError
