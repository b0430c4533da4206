"""What the admin's views work with: the API application's services, built per request
exactly as the API's dependencies build them, and the staff member who is signed in."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from starlette.requests import Request

from library_service.admin.service import DeskService
from library_service.audit.service import AuditService
from library_service.books.service import BookService
from library_service.borrowings.service import BorrowingService
from library_service.core.config import Settings
from library_service.core.db import UnitOfWork
from library_service.holds.service import HoldService
from library_service.notifications.service import StaffMessageService
from library_service.payments.service import PaymentService
from library_service.services import Services
from library_service.users.schemas import AuthUser
from library_service.users.service import UserService

ADMIN_PATH = "/admin"


@dataclass(frozen=True, slots=True)
class Desk:
    """The API application, whose state holds the composition root once its lifespan has
    started (the admin is mounted before that). Each action gets its services over a unit
    of work of its own, built exactly as for the API."""

    app: FastAPI

    @property
    def settings(self) -> Settings:
        settings: Settings = self.app.state.settings
        return settings

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    def _uow(self) -> UnitOfWork:
        return self.services.unit_of_work()

    def users(self) -> UserService:
        return self.services.users(self._uow())

    def books(self) -> BookService:
        return self.services.books(self._uow())

    def borrowings(self, request: Request) -> BorrowingService:
        return self.services.borrowings(self._uow(), base_url=api_base_url(request))

    def holds(self) -> HoldService:
        return self.services.holds(self._uow())

    def payments(self, request: Request) -> PaymentService:
        return self.services.payments(self._uow(), base_url=api_base_url(request))

    def messages(self) -> StaffMessageService:
        return self.services.staff_messages(self._uow())

    def figures(self) -> DeskService:
        return self.services.desk(self._uow())

    def audit(self) -> AuditService:
        return self.services.audit(self._uow())


def api_base_url(request: Request) -> str:
    """The API's base URL as this request reached the admin (Stripe sends payers back to
    the API's pages, not the admin's): its origin and any prefix a
    proxy serves the application under, without the admin's own path."""
    root: str = request.scope.get("root_path", "")
    if root.endswith(ADMIN_PATH):
        root = root[: -len(ADMIN_PATH)]
    return f"{request.url.scheme}://{request.url.netloc}{root}/"


def signed_in_staff(request: Request) -> AuthUser:
    """The staff member this admin request is made by (the auth provider put them there)."""
    staff: AuthUser = request.state.admin_user.staff
    return staff
