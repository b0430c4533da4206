"""The composition root: every service is built here, from the settings, the process's
shared clients and a unit of work, for all three callers: the API's dependencies, the admin's
views and the worker's jobs.

One `Services` is made per process (the API's lifespan, the worker's start-up); each request
or job asks it for the services it needs, over a unit of work of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from library_service.admin.service import DeskService
from library_service.audit.service import AuditService
from library_service.books.service import BookService
from library_service.borrowings.service import BorrowingService
from library_service.core.config import Settings
from library_service.core.db import BeforeCommitHooks, Database, UnitOfWork
from library_service.holds.service import HoldService
from library_service.notifications.service import MemberInbox, StaffMessageService
from library_service.payments.checkout import CheckoutSaga, CheckoutUrls
from library_service.payments.service import PaymentService
from library_service.payments.stripe_client import StripeGateway
from library_service.users.service import UserService
from library_service.users.throttle import LocalLoginCounts, LoginThrottle
from library_service.web.dependencies import request_base_url, unit_of_work_for

if TYPE_CHECKING:
    from arq.connections import ArqRedis


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    db: Database
    queue: ArqRedis | None
    stripe: StripeGateway
    # The login limit's counts in this process (the limit while Redis cannot answer).
    login_counts: LocalLoginCounts = field(default_factory=LocalLoginCounts)

    def unit_of_work(self, before_commit: BeforeCommitHooks | None = None) -> UnitOfWork:
        """A request's or a job's way to the database (`before_commit`: hooks that every
        write phase runs in its transaction, such as an Idempotency-Key's mark)."""
        return UnitOfWork(self.db, self.queue, before_commit=before_commit)

    def login_throttle(
        self, queue: ArqRedis | None, prefix: str = "login-failures"
    ) -> LoginThrottle:
        """The login limit (per address, and per email), counted in `queue`'s Redis (the
        request's, as its jobs are); password reset requests are counted apart, under the
        same bounds."""
        return LoginThrottle(
            queue,
            self.login_counts,
            per_address=self.settings.LOGIN_RATE_LIMIT_PER_ADDRESS,
            per_email=self.settings.LOGIN_RATE_LIMIT,
            window_seconds=self.settings.LOGIN_RATE_WINDOW_SECONDS,
            prefix=prefix,
        )

    def users(self, uow: UnitOfWork) -> UserService:
        return UserService(
            uow,
            settings=self.settings,
            throttle=self.login_throttle(uow.queue),
            reset_throttle=self.login_throttle(uow.queue, prefix="password-resets"),
        )

    def notices(self, uow: UnitOfWork) -> MemberInbox:
        return MemberInbox(uow)

    def books(self, uow: UnitOfWork) -> BookService:
        return BookService(uow, settings=self.settings)

    def holds(self, uow: UnitOfWork) -> HoldService:
        return HoldService(uow, settings=self.settings)

    def borrowings(self, uow: UnitOfWork, *, base_url: str = "") -> BorrowingService:
        checkout = self.checkout(uow, base_url=base_url)
        return BorrowingService(uow, settings=self.settings, checkout=checkout)

    def payments(self, uow: UnitOfWork, *, base_url: str = "") -> PaymentService:
        checkout = self.checkout(uow, base_url=base_url)
        return PaymentService(uow, settings=self.settings, checkout=checkout)

    def staff_messages(self, uow: UnitOfWork) -> StaffMessageService:
        return StaffMessageService(uow)

    def audit(self, uow: UnitOfWork) -> AuditService:
        return AuditService(uow, settings=self.settings)

    def desk(self, uow: UnitOfWork) -> DeskService:
        return DeskService(uow, settings=self.settings)

    def checkout(self, uow: UnitOfWork, *, base_url: str = "") -> CheckoutSaga:
        """The checkout saga. Stripe sends the payer back to PUBLIC_BASE_URL, or else to
        `base_url`: the API's address as the request at hand reached it."""
        return CheckoutSaga(uow, self.stripe, self._checkout_urls(base_url))

    def _checkout_urls(self, base_url: str) -> CheckoutUrls | None:
        base = self.settings.PUBLIC_BASE_URL or base_url
        # Reads and the paths that never charge need no address: the saga asks only when
        # it opens a session.
        return CheckoutUrls.for_base(base) if base else None


# -- the API's side ----------------------------------------------------------------------


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


# Each service is one dependency, built from the request (FastAPI resolves every dependency
# on every request); its unit of work needs no sharing with the route's other dependencies,
# since the before-commit hooks live on the request (see web/dependencies.py).
def _parts(request: Request) -> tuple[Services, UnitOfWork]:
    services: Services = request.app.state.services
    return services, unit_of_work_for(request)


async def get_user_service(request: Request) -> UserService:
    services, uow = _parts(request)
    return services.users(uow)


async def get_notice_service(request: Request) -> MemberInbox:
    services, uow = _parts(request)
    return services.notices(uow)


async def get_book_service(request: Request) -> BookService:
    services, uow = _parts(request)
    return services.books(uow)


async def get_hold_service(request: Request) -> HoldService:
    services, uow = _parts(request)
    return services.holds(uow)


async def get_borrowing_service(request: Request) -> BorrowingService:
    services, uow = _parts(request)
    return services.borrowings(uow, base_url=request_base_url(request))


async def get_payment_service(request: Request) -> PaymentService:
    services, uow = _parts(request)
    return services.payments(uow, base_url=request_base_url(request))


async def get_audit_service(request: Request) -> AuditService:
    services, uow = _parts(request)
    return services.audit(uow)


AuditServiceDep = Annotated[AuditService, Depends(get_audit_service)]
UserServiceDep = Annotated[UserService, Depends(get_user_service)]
NoticeServiceDep = Annotated[MemberInbox, Depends(get_notice_service)]
BookServiceDep = Annotated[BookService, Depends(get_book_service)]
HoldServiceDep = Annotated[HoldService, Depends(get_hold_service)]
BorrowingServiceDep = Annotated[BorrowingService, Depends(get_borrowing_service)]
PaymentServiceDep = Annotated[PaymentService, Depends(get_payment_service)]
