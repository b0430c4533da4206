"""The staff messages' refusals, each with one code and one status."""

from __future__ import annotations

from library_service.core.errors import AppError, NotFoundError


class NotificationNotFoundError(NotFoundError):
    code = "notification_not_found"
    message = "There is no staff message with this id."


class NotificationNotFailedError(AppError):
    code = "notification_not_failed"
    message = "Only a FAILED message can be sent again; this one is pending or already sent."


class NoticeNotFoundError(NotFoundError):
    code = "notice_not_found"
    message = "There is no notice of yours with this id."


class NoticeNotFailedError(AppError):
    code = "notice_not_failed"
    message = "Only a FAILED notice can be sent again; this one is pending, sent or not e-mailed."
