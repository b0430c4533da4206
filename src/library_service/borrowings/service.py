from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from library_service.books.repository import BookRepository
from library_service.borrowings.repository import (
    BorrowerStanding,
    BorrowingFilters,
    BorrowingRepository,
)
from library_service.borrowings.schemas import BorrowingCreate
from library_service.core import clock
from library_service.core.config import Settings
from library_service.core.db import AnyRow, read_without_transaction, release_connection
from library_service.core.errors import AppError, ConflictError, NotFoundError
from library_service.core.jobs import defer_job
from library_service.core.money import chargeable
from library_service.core.pagination import PageParams
from library_service.models import Borrowing, PaymentType
from library_service.notifications import messages
from library_service.notifications.service import NotificationService
from library_service.payments import jobs as payment_jobs
from library_service.payments.service import (
    CheckoutItem,
    CheckoutUrls,
    PaymentProviderUnavailableError,
    PaymentService,
)
from library_service.payments.stripe_client import CheckoutSession, StripeUnavailableError
from library_service.users.repository import AuthUser

logger = logging.getLogger(__name__)


class BorrowingNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("Borrowing not found.", code="borrowing_not_found")


class AlreadyReturnedError(AppError):
    def __init__(self) -> None:
        super().__init__("This borrowing has already been returned.", code="already_returned")


class BookNotFoundError(AppError):  # 400, not 404: the id is in the body, not the path
    def __init__(self) -> None:
        super().__init__("There is no book with this id.", code="book_not_found")


class BookUnavailableError(AppError):
    def __init__(self) -> None:
        super().__init__("No copy of this book is available right now.", code="book_unavailable")


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
        await read_without_transaction(self.session)
        draft = await self.borrowings.prepare(data.book, user.id)
        if draft is None:
            raise BookNotFoundError
        book = draft.book
        if book.inventory <= 0:
            raise BookUnavailableError
        self._check_standing(draft.standing)

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
        await release_connection(self.session)
        try:
            checkout = await self.payments.open_checkout(draft.payment_id, item, urls)
        except StripeUnavailableError as exc:
            raise PaymentProviderUnavailableError from exc

        try:
            borrowing = await self._record_borrowing(
                user,
                data,
                today=today,
                daily_fee=daily_fee,
                payment_id=draft.payment_id,
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
        taken = await self.borrowings.take_copy(data.book, user.id)
        if taken is None:  # the last copy went meanwhile (or the book was deleted)
            raise BookUnavailableError
        book, standing = taken
        self._check_standing(standing)  # on failure the rollback puts the copy back
        if book.daily_fee != daily_fee:
            raise ConflictError(
                "The book's daily fee changed while you were borrowing it; please try again.",
                code="fee_changed",
            )
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

    def _check_standing(self, standing: BorrowerStanding) -> None:
        """The member has no unpaid fine and room for one more loan."""
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

    # -- returning ----------------------------------------------------------------------

    async def return_book(self, borrowing_id: int, user: AuthUser, urls: CheckoutUrls) -> Borrowing:
        """Record a return: inventory + 1 and, if late, a FINE with its Checkout Session.

        A return is never refused for Stripe's sake: if Stripe cannot be reached the FINE
        is kept PENDING without a session, and the worker (or a renewal) gives it one.
        """
        today = clock.today(self.settings.timezone)
        await read_without_transaction(self.session)
        borrowing = await self.borrowings.get(
            borrowing_id, user_id=None if user.is_staff else user.id, with_book=True
        )
        if borrowing is None:
            raise BorrowingNotFoundError
        if not borrowing.is_active:
            raise AlreadyReturnedError

        fine = self._fine(borrowing, today)
        borrower_id = borrowing.user_id
        fine_payment_id: int | None = None
        item: CheckoutItem | None = None
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

        checkout: CheckoutSession | None = None
        if fine_payment_id is not None and item is not None:
            try:
                checkout = await self.payments.open_checkout(fine_payment_id, item, urls)
            except StripeUnavailableError:
                logger.warning("fine %s recorded without a checkout session", fine_payment_id)

        try:
            return await self._record_return(
                borrowing_id,
                borrower_id=borrower_id,
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
        borrower_id: int,
        today: date,
        fine: Decimal | None,
        fine_payment_id: int | None,
        checkout: CheckoutSession | None,
    ) -> Borrowing:
        # Lock order everywhere: user, then borrowing, then book.
        if fine is not None:
            # A fine changes the member's standing: a borrowing of theirs under way must
            # either see it or finish first.
            await self.borrowings.lock_borrower(borrower_id)
        returned = await self.borrowings.mark_returned(borrowing_id, today)
        if returned is None:  # a concurrent return got here first
            raise AlreadyReturnedError
        borrowing, email = returned
        book = await self.books.return_copy(borrowing.book_id)
        assert book is not None  # books with borrowings cannot be deleted
        payments = list(await self.borrowings.payments_of(borrowing.id))

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
                    payment_jobs.ATTACH_SESSION,
                    fine_payment_id,
                    job_id=payment_jobs.attach_session_job_id(fine_payment_id),
                )
        assert borrowing.actual_return_date is not None
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

    def _fine(self, borrowing: Borrowing, today: date) -> Decimal | None:
        late_days = (today - borrowing.expected_return_date).days
        if late_days <= 0:
            return None
        return chargeable(late_days * borrowing.book.daily_fee * self.settings.FINE_MULTIPLIER)
