"""The audit domain's refusals."""

from __future__ import annotations

from library_service.core.errors import AppError


class InvalidDateRangeError(AppError):
    code = "invalid_date_range"
    message = "`since` must be on or before `until`."
