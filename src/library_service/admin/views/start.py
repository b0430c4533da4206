"""The start page: the figures a librarian wants first, each a link to the list behind it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette_admin.routing import route
from starlette_admin.views import CustomView

from library_service.admin.desk import Desk


class StartView(CustomView):
    def __init__(self, desk: Desk) -> None:
        super().__init__(menu_label="Desk", icon="fa fa-house", path="/", route_name="index")
        self.desk = desk

    @route("")
    async def index(self, request: Request) -> Response:
        assert self._admin is not None
        return self._admin._template_response(
            request=request,
            name="admin/start.html",
            context={"title": "Desk", "figures": await self.desk.figures().figures()},
        )
