"""What the admin's views work with: the API application's services, built per request
exactly as the API's dependencies build them, and the staff member who is signed in."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from starlette.requests import Request

from library_service.admin.service import DeskService
from library_service.books.service import BookService
from library_service.borrowings.service import BorrowingService
from library_service.core.config import Settings
from library_service.core.db import UnitOfWork
from library_service.core.ratelimit import LoginThrottle
from library_service.holds.service import HoldService
from library_service.notifications.service import StaffMessageService
from library_service.payments.checkout import CheckoutSaga, CheckoutUrls
from library_service.payments.service import PaymentService
from library_service.users.schemas import AuthUser
from library_service.users.service import UserService

ADMIN_PATH = "/admin"


@dataclass(frozen=True, slots=True)
class Desk:
    """The API application, whose state holds the database, the queue and Stripe once its
    lifespan has started (the admin is mounted before that)."""

    app: FastAPI

    @property
    def settings(self) -> Settings:
        settings: Settings = self.app.state.settings
        return settings

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.app.state.db, self.app.state.queue)

    def users(self) -> UserService:
        throttle = LoginThrottle.for_app(self.app.state, self.app.state.queue)
        return UserService(self.uow(), settings=self.settings, throttle=throttle)

    def books(self) -> BookService:
        return BookService(self.uow(), settings=self.settings)

    def borrowings(self, request: Request) -> BorrowingService:
        return BorrowingService(self.uow(), settings=self.settings, checkout=self.checkout(request))

    def holds(self) -> HoldService:
        return HoldService(self.uow(), settings=self.settings)

    def payments(self, request: Request) -> PaymentService:
        return PaymentService(self.uow(), settings=self.settings, checkout=self.checkout(request))

    def messages(self) -> StaffMessageService:
        return StaffMessageService(self.uow())

    def figures(self) -> DeskService:
        return DeskService(self.uow(), settings=self.settings)

    def checkout(self, request: Request) -> CheckoutSaga:
        """The checkout saga, sending payers back to the API's pages (not the admin's)."""
        base = self.settings.PUBLIC_BASE_URL or api_base_url(request)
        return CheckoutSaga(self.uow(), self.app.state.stripe, CheckoutUrls.for_base(base))


def api_base_url(request: Request) -> str:
    """The API's base URL as this request reached the admin: its origin and any prefix a
    proxy serves the application under, without the admin's own path."""
    root: str = request.scope.get("root_path", "")
    if root.endswith(ADMIN_PATH):
        root = root[: -len(ADMIN_PATH)]
    return f"{request.url.scheme}://{request.url.netloc}{root}/"


def signed_in_staff(request: Request) -> AuthUser:
    """The staff member this admin request is made by (the auth provider put them there)."""
    staff: AuthUser = request.state.admin_user.staff
    return staff
