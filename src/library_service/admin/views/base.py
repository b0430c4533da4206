"""What every model view of the admin shares."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette_admin.contrib.sqla import ModelView
from starlette_admin.exceptions import ActionFailed, FormValidationError
from starlette_admin.flash import flash
from starlette_admin.types import RowActionsDisplayType

from library_service.admin.desk import Desk
from library_service.core.errors import AppError

M = TypeVar("M", bound=BaseModel)


class DeskView(ModelView):
    """A model view whose reads are starlette-admin's own (on the API's autocommit
    connections) and whose every change goes through a service.

    Nothing can be imported (that would write rows past the services); lists can be
    exported as CSV or JSON.
    """

    importers: Sequence[Any] = []
    exporters: Sequence[Any] = ["csv", "json"]
    page_size = 25
    page_size_options = [25, 50, 100]
    column_visibility = False
    row_actions_display_type = RowActionsDisplayType.INLINE_LINKS

    def __init__(self, desk: Desk, model: type[Any]) -> None:
        self.desk = desk
        super().__init__(model)

    def can_import(self, request: Request) -> bool:
        return False

    async def handle_row_action(self, request: Request, pk: Any, name: str) -> Response | None:
        try:
            return await super().handle_row_action(request, pk, name)
        except ActionFailed as exc:
            if exc.msg == "Forbidden":  # the row changed since the page showed the button
                raise ActionFailed(
                    "This no longer applies: the row changed meanwhile. Reload the page."
                ) from exc
            raise


def validated(schema: type[M], data: Mapping[str, Any]) -> M:
    """The form's values as the API's input schema checks them; FormValidationError (shown
    beside each field) if they break its rules."""
    try:
        return schema.model_validate(dict(data))
    except ValidationError as exc:
        errors: dict[str | int, Any] = {}
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "__all__"
            errors.setdefault(field, error["msg"])
        raise FormValidationError(errors) from exc


def refused_form(
    request: Request, exc: AppError, *, field: str | None = None
) -> FormValidationError:
    """A service's refusal on a form: beside `field` if given, else above the form."""
    if field is not None:
        return FormValidationError({field: exc.message})
    flash(request, exc.message, "error")
    return FormValidationError({})


def contains(term: str) -> str:
    """An ILIKE pattern matching `term` anywhere, its wildcards taken literally."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


DATE = "%Y-%m-%d"
DATETIME = "%Y-%m-%d %H:%M"
