from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from library_service.books.repository import BookRepository
from library_service.borrowings.repository import BorrowingFilters, BorrowingRepository
from library_service.borrowings.schemas import BorrowingCreate
from library_service.core import clock
from library_service.core.config import Settings
from library_service.core.db import AnyRow, release_connection
from library_service.core.errors import AppError, ConflictError, NotFoundError
from library_service.core.jobs import defer_job
from library_service.core.money import chargeable
from library_service.core.pagination import PageParams
from library_service.models import Book, Borrowing, PaymentType
from library_service.notifications import messages
from library_service.notifications.service import NotificationService
from library_service.payments.service import (
    CheckoutItem,
    CheckoutUrls,
    PaymentProviderUnavailableError,
    PaymentService,
)
from library_service.payments.stripe_client import CheckoutSession, StripeUnavailableError
from library_service.users.repository import AuthUser

logger = logging.getLogger(__name__)

ATTACH_SESSION_JOB = "attach_missing_session"


class BorrowingNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("Borrowing not found.", code="borrowing_not_found")


class BorrowingService:
    def __init__(
        self, session: AsyncSession, *, settings: Settings, payments: PaymentService
    ) -> None:
        self.session = session
        self.settings = settings
        self.payments = payments
        self.borrowings = BorrowingRepository(session)
        self.books = BookRepository(session)
        self.notifications = NotificationService(session)

    # -- reading ------------------------------------------------------------------------

    async def list_borrowings(
        self, user: AuthUser, filters: BorrowingFilters, page: PageParams
    ) -> tuple[Sequence[AnyRow], int]:
        if not user.is_staff:  # members see their own, whatever they ask for
            filters = BorrowingFilters(user_id=user.id, is_active=filters.is_active)
        return await self.borrowings.list(filters, page)

    async def get_borrowing(self, borrowing_id: int, user: AuthUser) -> Borrowing:
        borrowing = await self.borrowings.get(
            borrowing_id,
            user_id=None if user.is_staff else user.id,
            with_book=True,
            with_payments=True,
        )
        if borrowing is None:
            raise BorrowingNotFoundError
        return borrowing

    # -- borrowing ----------------------------------------------------------------------

    async def borrow(self, user: AuthUser, data: BorrowingCreate, urls: CheckoutUrls) -> Borrowing:
        """Lend a copy: inventory - 1, the borrowing, and its fee with a Checkout Session.

        Stripe is called first, holding no lock; then, in one transaction with the member's
        and the book's rows locked, every rule is checked again and the rows are written.
        If that fails, the session is expired. If Stripe fails, nothing is written.
        """
        today = clock.today(self.settings.timezone)
        self._check_return_date(data.expected_return_date, today)
        book = await self._check_rules(data.book, user.id, lock=False)

        days = (data.expected_return_date - today).days
        daily_fee = book.daily_fee
        item = CheckoutItem.for_payment(
            PaymentType.PAYMENT,
            title=book.title,
            detail=(
                f"by {book.author}: {days} day(s), {today:%Y-%m-%d} to "
                f"{data.expected_return_date:%Y-%m-%d}"
            ),
            amount=chargeable(days * daily_fee),
        )
        payment_id = await self.payments.reserve_id()
        await release_connection(self.session)
        try:
            checkout = await self.payments.open_checkout(payment_id, item, urls)
        except StripeUnavailableError as exc:
            raise PaymentProviderUnavailableError from exc

        try:
            borrowing = await self._record_borrowing(
                user,
                data,
                today=today,
                daily_fee=daily_fee,
                payment_id=payment_id,
                amount=item.amount,
                checkout=checkout,
            )
        except AppError:
            await self.session.rollback()  # release the row locks before calling Stripe
            await self.payments.abandon_checkout(checkout)
            raise
        return borrowing

    async def _record_borrowing(
        self,
        user: AuthUser,
        data: BorrowingCreate,
        *,
        today: date,
        daily_fee: Decimal,
        payment_id: int,
        amount: Decimal,
        checkout: CheckoutSession,
    ) -> Borrowing:
        # Lock order everywhere: user, then borrowing, then book.
        await self.borrowings.lock_borrower(user.id)
        book = await self._check_rules(data.book, user.id, lock=True)
        if book.daily_fee != daily_fee:
            raise ConflictError(
                "The book's daily fee changed while you were borrowing it; please try again.",
                code="fee_changed",
            )
        book.inventory -= 1
        borrowing = await self.borrowings.add(
            Borrowing(
                borrow_date=today,
                expected_return_date=data.expected_return_date,
                book_id=book.id,
                user_id=user.id,
            )
        )
        payment = await self.payments.add_payment(
            payment_id=payment_id,
            borrowing_id=borrowing.id,
            payment_type=PaymentType.PAYMENT,
            amount=amount,
            checkout=checkout,
        )
        # The answer's book and payments are at hand: no need to read them back.
        set_committed_value(borrowing, "book", book)
        set_committed_value(borrowing, "payments", [payment])
        await self.notifications.record(
            "borrowing_created",
            messages.borrowing_created(
                borrowing_id=borrowing.id,
                email=user.email,
                title=book.title,
                author=book.author,
                borrow_date=today,
                expected_return_date=data.expected_return_date,
                fee=amount,
            ),
        )
        return borrowing

    def _check_return_date(self, expected: date, today: date) -> None:
        if expected <= today:
            raise AppError("expected_return_date must be after today.", code="invalid_return_date")
        latest = today + timedelta(days=self.settings.MAX_BORROW_DAYS)
        if expected > latest:
            raise AppError(
                f"expected_return_date can be at most {self.settings.MAX_BORROW_DAYS} days "
                f"ahead (on or before {latest:%Y-%m-%d}).",
                code="return_date_too_far",
            )

    async def _check_rules(self, book_id: int, user_id: int, *, lock: bool) -> Book:
        """The book exists and has a copy; the member has no unpaid fine and room for one
        more loan. With `lock`, the book's row stays locked until the transaction ends."""
        book, standing = await self.borrowings.book_and_standing(book_id, user_id, lock_book=lock)
        if book is None:
            raise AppError("There is no book with this id.", code="book_not_found")
        if book.inventory <= 0:
            raise AppError("No copy of this book is available right now.", code="book_unavailable")
        if standing.has_unpaid_fine:
            raise AppError(
                "You have an unpaid fine; pay it (or renew its payment) before borrowing again.",
                code="unpaid_fines",
            )
        limit = self.settings.MAX_ACTIVE_BORROWINGS
        if standing.active_borrowings >= limit:
            raise AppError(
                f"You already have {limit} active borrowings, the most allowed; "
                "return one before borrowing again.",
                code="loan_limit_reached",
            )
        return book

    # -- returning ----------------------------------------------------------------------

    async def return_book(self, borrowing_id: int, user: AuthUser, urls: CheckoutUrls) -> Borrowing:
        """Record a return: inventory + 1 and, if late, a FINE with its Checkout Session.

        A return is never refused for Stripe's sake: if Stripe cannot be reached the FINE
        is kept PENDING without a session, and the worker (or a renewal) gives it one.
        """
        today = clock.today(self.settings.timezone)
        borrowing = await self.borrowings.get(
            borrowing_id, user_id=None if user.is_staff else user.id, with_book=True
        )
        if borrowing is None:
            raise BorrowingNotFoundError
        self._check_active(borrowing)

        fine = self._fine(borrowing, today)
        fine_payment_id: int | None = None
        checkout: CheckoutSession | None = None
        if fine is not None:
            fine_payment_id = await self.payments.reserve_id()
            late = (today - borrowing.expected_return_date).days
            item = CheckoutItem.for_payment(
                PaymentType.FINE,
                title=borrowing.book.title,
                detail=f"by {borrowing.book.author}: returned {late} day(s) late",
                amount=fine,
            )
            await release_connection(self.session)
            try:
                checkout = await self.payments.open_checkout(fine_payment_id, item, urls)
            except StripeUnavailableError:
                logger.warning("fine %s recorded without a checkout session", fine_payment_id)

        try:
            return await self._record_return(
                borrowing_id,
                today=today,
                fine=fine,
                fine_payment_id=fine_payment_id,
                checkout=checkout,
            )
        except AppError:
            await self.session.rollback()  # release the row locks before calling Stripe
            await self.payments.abandon_checkout(checkout)
            raise

    async def _record_return(
        self,
        borrowing_id: int,
        *,
        today: date,
        fine: Decimal | None,
        fine_payment_id: int | None,
        checkout: CheckoutSession | None,
    ) -> Borrowing:
        locked = await self.borrowings.lock_for_return(borrowing_id)
        if locked is None:
            raise BorrowingNotFoundError
        borrowing, email = locked
        self._check_active(borrowing)  # a concurrent return got here first
        borrowing.actual_return_date = max(today, borrowing.borrow_date)
        book = await self.books.get(borrowing.book_id, for_update=True)
        assert book is not None  # books with borrowings cannot be deleted
        book.inventory += 1
        payments = list(borrowing.payments)

        if fine is not None and fine_payment_id is not None:
            payments.append(
                await self.payments.add_payment(
                    payment_id=fine_payment_id,
                    borrowing_id=borrowing.id,
                    payment_type=PaymentType.FINE,
                    amount=fine,
                    checkout=checkout,
                )
            )
            if checkout is None:
                defer_job(
                    self.session,
                    ATTACH_SESSION_JOB,
                    fine_payment_id,
                    job_id=f"attach-session:{fine_payment_id}",
                )
        await self.notifications.record(
            "borrowing_returned",
            messages.borrowing_returned(
                borrowing_id=borrowing.id,
                email=email,
                title=book.title,
                author=book.author,
                expected_return_date=borrowing.expected_return_date,
                returned_on=borrowing.actual_return_date,
                fine=fine,
            ),
        )
        # The answer's book and payments are at hand: no need to read them back.
        set_committed_value(borrowing, "book", book)
        set_committed_value(borrowing, "payments", payments)
        return borrowing

    @staticmethod
    def _check_active(borrowing: Borrowing) -> None:
        if not borrowing.is_active:
            raise AppError("This borrowing has already been returned.", code="already_returned")

    def _fine(self, borrowing: Borrowing, today: date) -> Decimal | None:
        late_days = (today - borrowing.expected_return_date).days
        if late_days <= 0:
            return None
        return chargeable(late_days * borrowing.book.daily_fee * self.settings.FINE_MULTIPLIER)
