"""What every model view of the admin shares."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette_admin import HasOne
from starlette_admin.contrib.sqla import ModelView
from starlette_admin.exceptions import ActionFailed, FormValidationError
from starlette_admin.filters import FilterGroup
from starlette_admin.flash import flash
from starlette_admin.types import RequestAction, RowActionsDisplayType

from library_service.admin.desk import Desk
from library_service.core.errors import AppError
from library_service.core.pagination import settle_count

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

    async def count(
        self, request: Request, q: str | None = None, filters: FilterGroup | None = None
    ) -> int:
        """The list's total as the API's lists count it: exact up to a cap, PostgreSQL's
        estimate past it (core/pagination.py), instead of counting millions of rows for
        "1 to 25 of N"."""
        session: AsyncSession = request.state.session
        statement = await self._apply_search_and_filters(
            request, self.get_count_query(request), q, filters
        )
        return await settle_count(session, statement, None)

    def use_row_action_forms(self, **builders: Callable[[Request, Any], str]) -> None:
        """Row actions whose modal form is built for each row by the view (a form that
        names the row, or offers a value from the settings)."""
        for name, build in builders.items():
            self._row_actions[name] = {**self._row_actions[name], "form": build}  # type: ignore[dict-item]

    async def _export_resolve_items(
        self,
        request: Request,
        selection: Any,
        scope: str,
        list_params: Any,
        export_config: Any,
    ) -> Sequence[Any]:
        """The export form's "All matching rows" (templates/actions/export_form.html): every
        row the list's search and filters select, not only the page on screen."""
        if scope == "all":
            return await self.find_all(
                request=request,
                skip=0,
                limit=-1,
                q=list_params.q,
                sorts=list_params.sorts,
                filters=list_params.filters,
            )
        return await super()._export_resolve_items(
            request, selection, scope, list_params, export_config
        )

    async def handle_row_action(self, request: Request, pk: Any, name: str) -> Response | None:
        try:
            return await super().handle_row_action(request, pk, name)
        except ActionFailed as exc:
            if exc.msg == "Forbidden":  # the row changed since the page showed the button
                raise ActionFailed(
                    "This no longer applies: the row changed meanwhile. Reload the page."
                ) from exc
            raise


@dataclass
class NamedHasOne(HasOne):
    """A link to one related row, exported by its name (the related view's repr: a
    member's email, a book's title) rather than by its id."""

    async def serialize_value(self, request: Request, value: Any) -> Any:
        if request.state.action == RequestAction.EXPORT and self._view is not None:
            related = self._view._find_foreign_view(self.key or "")
            return await related.repr(value, request)
        return await super().serialize_value(request, value)


class ReadOnlyDeskView(DeskView):
    """A model view with no form: its rows change only through its actions, which call the
    services as the API does."""

    def can_create(self, request: Request) -> bool:
        return False

    def can_edit(self, request: Request) -> bool:
        return False

    def can_delete(self, request: Request) -> bool:
        return False


def validated(schema: type[M], data: Mapping[str, Any]) -> M:
    """The form's values as the API's input schema checks them; FormValidationError (shown
    beside each field) if they break its rules."""
    try:
        return schema.model_validate(dict(data))
    except ValidationError as exc:
        errors: dict[str | int, Any] = {}
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "__all__"
            errors.setdefault(field, _sentence(error))
        raise FormValidationError(errors) from exc


def _sentence(error: Any) -> str:
    """A validation error as a librarian reads it: the rule's own sentence, without
    pydantic's prefixes or the stored values of a choice."""
    kind = error["type"]
    if kind == "value_error":
        text = str(error["ctx"]["error"])
    elif kind in {"missing", "string_too_short"} and not error.get("input"):
        text = "this field is required"
    elif kind in {"enum", "literal_error"}:
        text = "choose one of the options"
    else:
        text = str(error["msg"])
    return text[:1].upper() + text[1:]


def refused_form(
    request: Request, exc: AppError, *, field: str | None = None
) -> FormValidationError:
    """A service's refusal on a form: beside `field` if given, else above the form."""
    if field is not None:
        return FormValidationError({field: exc.message})
    flash(request, exc.message, "error")
    return FormValidationError({})


@contextmanager
def refusal_fails_action() -> Iterator[None]:
    """A service's refusal in the block fails the action, with the refusal's message."""
    try:
        yield
    except AppError as exc:
        raise ActionFailed(exc.message) from exc


async def for_each_row(
    pks: Sequence[Any], change: Callable[[int], Awaitable[object]], *, done: str
) -> int:
    """`change` each row in turn, the others going ahead when one is refused; how many
    changed, or ActionFailed naming every refusal (and how many were `done` besides)."""
    changed, refusals = 0, []
    for pk in pks:
        try:
            await change(int(pk))
            changed += 1
        except AppError as exc:
            refusals.append(f"#{pk}: {exc.message}")
    if refusals:
        so_far = f"{changed} {done}. " if changed else ""
        raise ActionFailed(so_far + " ".join(refusals))
    return changed


DATE = "%Y-%m-%d"
DATETIME = "%Y-%m-%d %H:%M"
