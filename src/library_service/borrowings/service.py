from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from library_service.books.errors import BookNotFoundError
from library_service.borrowings import rules
from library_service.borrowings.errors import BorrowingNotFoundError
from library_service.borrowings.repository import (
    BorrowingListItem,
    BorrowingRepository,
    borrowings_page,
)
from library_service.borrowings.schemas import BorrowingCreate, BorrowingExtend, BorrowingFilters
from library_service.circulation import copies
from library_service.core import clock
from library_service.core.audit import AuditAction, AuditTarget, AuditTrail, Target
from library_service.core.config import Settings
from library_service.core.db import UnitOfWork
from library_service.core.errors import found
from library_service.core.pagination import PageParams
from library_service.models import Borrowing, PaymentType, User
from library_service.notifications import messages, notices
from library_service.notifications.service import (
    MemberNoticeService,
    NotificationService,
    Recipient,
)
from library_service.payments.checkout import Charge, CheckoutSaga, OpenedCheckout
from library_service.users.errors import UserNotFoundError
from library_service.users.schemas import AuthUser


class BorrowingService:
    def __init__(self, uow: UnitOfWork, *, settings: Settings, checkout: CheckoutSaga) -> None:
        self.uow = uow
        self.settings = settings
        self.checkout = checkout

    def _today(self) -> date:
        return clock.today(self.settings.timezone)

    # -- reading ------------------------------------------------------------------------

    async def list_borrowings(
        self, user: AuthUser, filters: BorrowingFilters, page: PageParams
    ) -> tuple[Sequence[BorrowingListItem], int]:
        async with self.uow.read_rows() as connection:
            return await borrowings_page(
                connection,
                user.restrict(filters),
                page,
                estimate_ttl=self.settings.ESTIMATED_COUNT_CACHE_SECONDS,
            )

    async def get_borrowing(self, borrowing_id: int, user: AuthUser) -> Borrowing:
        return await self._visible(borrowing_id, user, with_payments=True)

    async def _visible(
        self, borrowing_id: int, user: AuthUser, *, with_payments: bool = False
    ) -> Borrowing:
        """A borrowing with its book and member, if `user` may see it (their own; staff: any)."""
        async with self.uow.read() as session:
            borrowing = await BorrowingRepository(session).get(
                borrowing_id,
                user_id=user.restricted_to,
                with_book=True,
                with_member=True,
                with_payments=with_payments,
            )
        return found(borrowing, BorrowingNotFoundError)

    # -- borrowing ----------------------------------------------------------------------

    async def borrow(self, user: AuthUser, data: BorrowingCreate) -> Borrowing:
        """Lend a copy: inventory - 1, the borrowing, and its fee with a Checkout Session
        (the checkout saga: Stripe first, then the rules again under the locks)."""
        today = self._today()
        rules.check_return_date(data.expected_return_date, today=today, settings=self.settings)
        borrower_id = rules.borrower_of(user.id, actor_is_staff=user.is_staff, named=data.user)
        at_desk = borrower_id != user.id  # staff lending to a member
        borrower_email = user.email
        async with self.uow.read() as session:
            borrowings = BorrowingRepository(session)
            if at_desk:
                borrower_email, active = found(
                    await borrowings.member_brief(borrower_id), UserNotFoundError
                )
                rules.check_member_active(active)
            facts = await borrowings.borrow_facts(data.book, borrower_id)
        if facts is None:
            raise BookNotFoundError
        rules.check_can_borrow(facts, self.settings)
        book = facts.book
        charge = Charge(
            type=PaymentType.PAYMENT,
            title=book.title,
            detail=(
                f"by {book.author}: {(data.expected_return_date - today).days} day(s), "
                f"{today:%Y-%m-%d} to {data.expected_return_date:%Y-%m-%d}"
            ),
            amount=rules.loan_fee(book, start=today, end=data.expected_return_date),
        )
        quoted_fee = book.daily_fee
        async with self.checkout.open(charge) as (session, opened):
            borrowings = BorrowingRepository(session)
            # Lock order everywhere: member, then borrowing, then book, then holds.
            loan_id = await borrowings.lock_for_loan(borrower_id, data.book)
            if at_desk:  # deactivated meanwhile?
                brief = await borrowings.member_brief(borrower_id)
                rules.check_member_active(brief is not None and brief[1])
            facts = await borrowings.borrow_facts(data.book, borrower_id)
            if facts is None or loan_id is None:  # deleted meanwhile
                raise BookNotFoundError
            rules.check_can_borrow(facts, self.settings)
            book = facts.book
            rules.check_fee_unchanged(book, quoted=quoted_fee)
            from_shelf = facts.ready_hold_id is None  # a held copy is already off the shelf
            if from_shelf:
                copies.take_from_shelf(book)
            fee = opened.new_payment(borrowing_id=loan_id)
            borrowing = Borrowing(
                id=loan_id,
                borrow_date=today,
                expected_return_date=data.expected_return_date,
                actual_return_date=None,
                extensions=0,
                book_id=book.id,
                book=book,
                user_id=borrower_id,
                payments=[fee],
            )
            text = messages.borrowing_created(borrowing, book, borrower_email, fee=charge.amount)
            # The loan, its fee, the shelf count and the staff message: one statement.
            await NotificationService(session).record(
                "borrowing_created",
                text,
                along_with=borrowings.lend(borrowing, fee, from_shelf=from_shelf),
            )
            if facts.ready_hold_id is not None:
                await copies.take_held_copy(session, facts.ready_hold_id, borrowing)
            if user.is_staff:
                await AuditTrail(session).record(
                    user.id,
                    AuditAction.BORROWING_CREATE,
                    _loan_target(borrowing),
                    changes={
                        "expected_return_date": [None, borrowing.expected_return_date.isoformat()],
                        "fee": [None, str(charge.amount)],
                        **(
                            {"hold": [facts.ready_hold_id, "FULFILLED"]}
                            if facts.ready_hold_id
                            else {}
                        ),
                    },
                )
            return borrowing

    # -- extending ----------------------------------------------------------------------

    async def extend(self, borrowing_id: int, user: AuthUser, data: BorrowingExtend) -> Borrowing:
        """Move the due date later; the added days are charged as a new PAYMENT (the
        checkout saga, as for a borrowing)."""
        today = self._today()
        borrowing = await self._visible(borrowing_id, user)
        async with self.uow.read() as session:
            facts = await BorrowingRepository(session).extension_facts(borrowing)
        until = data.expected_return_date
        rules.check_can_extend(borrowing, facts, until=until, today=today, settings=self.settings)
        book, due = borrowing.book, borrowing.expected_return_date
        charge = Charge(
            type=PaymentType.PAYMENT,
            title=book.title,
            detail=f"by {book.author}: {(until - due).days} more day(s), to {until:%Y-%m-%d}",
            amount=rules.loan_fee(book, start=due, end=until),
        )
        quote = rules.ExtensionQuote(due=due, daily_fee=book.daily_fee, until=until)
        borrower = borrowing.user
        async with self.checkout.open(charge) as (session, opened):
            borrowings = BorrowingRepository(session)
            await borrowings.lock_member(borrower.id)  # an unpaid fine must be seen, or wait
            borrowing = await self._locked(borrowings, borrowing_id)
            facts = await borrowings.extension_facts(borrowing)
            rules.check_can_extend(
                borrowing, facts, until=quote.until, today=today, settings=self.settings
            )
            rules.check_extension_quote(borrowing, quote)
            borrowing.expected_return_date = quote.until
            borrowing.extensions += 1
            fee = opened.new_payment(borrowing_id=borrowing.id)
            text = messages.borrowing_extended(
                borrowing, borrowing.book, borrower.email, previous_due=quote.due, fee=charge.amount
            )
            # The new due date, its fee and the staff message: one statement.
            await NotificationService(session).record(
                "borrowing_extended", text, along_with=borrowings.extend(borrowing, fee)
            )
            if user.is_staff:
                await AuditTrail(session).record(
                    user.id,
                    AuditAction.BORROWING_EXTEND,
                    _loan_target(borrowing),
                    changes={
                        "expected_return_date": [quote.due.isoformat(), quote.until.isoformat()],
                        "fee": [None, str(charge.amount)],
                    },
                )
            draft = notices.extension(
                payment_id=opened.payment_id,
                title=borrowing.book.title,
                author=borrowing.book.author,
                due=quote.until,
                fee=charge.amount,
                checkout_url=opened.session.url if opened.session else None,
            )
            await MemberNoticeService(session).record(Recipient(borrower.id, borrower.email), draft)
            return borrowing

    # -- returning ----------------------------------------------------------------------

    async def return_book(self, borrowing_id: int, user: AuthUser) -> Borrowing:
        """Record a return: inventory + 1 and, if late, a FINE with its Checkout Session.

        A return is never refused for Stripe's sake: if Stripe cannot be reached the FINE
        is kept PENDING without a session, and the worker (or a renewal) gives it one.
        """
        today = self._today()
        borrowing = await self._visible(borrowing_id, user)
        rules.check_can_return(borrowing)
        fine = rules.fine(borrowing, borrowing.book, today=today, settings=self.settings)
        if fine is None:
            async with self.uow.write() as session:
                return await self._record_return(
                    session, borrowing_id, borrowing.user, today, actor=user
                )
        late = (today - borrowing.expected_return_date).days
        charge = Charge(
            type=PaymentType.FINE,
            title=borrowing.book.title,
            detail=f"by {borrowing.book.author}: returned {late} day(s) late",
            amount=fine,
        )
        async with self.checkout.open(charge, stripe_may_be_down=True) as (session, opened):
            return await self._record_return(
                session, borrowing_id, borrowing.user, today, actor=user, fine=opened
            )

    async def _record_return(
        self,
        session: AsyncSession,
        borrowing_id: int,
        borrower: User,
        today: date,
        *,
        actor: AuthUser,
        fine: OpenedCheckout | None = None,
    ) -> Borrowing:
        borrowings = BorrowingRepository(session)
        # Lock order everywhere: member, then borrowing, then book. A fine changes the
        # member's standing: a borrowing of theirs under way must see it or finish first.
        if fine is not None:
            await borrowings.lock_member(borrower.id)
        borrowing = await self._locked(borrowings, borrowing_id)
        rules.check_can_return(borrowing)  # a concurrent return may have got here first
        borrowing.actual_return_date = rules.return_date(borrowing, today=today)
        given = await copies.release_copies(
            session, borrowing.book, today=today, settings=self.settings
        )
        payment = fine.new_payment(borrowing_id=borrowing.id) if fine is not None else None
        text = messages.borrowing_returned(
            borrowing, borrowing.book, borrower.email, fine=fine.charge.amount if fine else None
        )
        # The return, the shelf count, the fine and the staff message: one statement.
        await NotificationService(session).record(
            "borrowing_returned",
            text,
            along_with=borrowings.close(borrowing, payment, to_shelf=not given),
        )
        if fine is not None:
            draft = notices.fine(
                payment_id=fine.payment_id,
                title=borrowing.book.title,
                author=borrowing.book.author,
                amount=fine.charge.amount,
                days_late=(borrowing.actual_return_date - borrowing.expected_return_date).days,
                checkout_url=fine.session.url if fine.session else None,
            )
            await MemberNoticeService(session).record(Recipient(borrower.id, borrower.email), draft)
        if actor.is_staff:
            changes = {"actual_return_date": [None, borrowing.actual_return_date.isoformat()]}
            if fine is not None:
                changes["fine"] = [None, str(fine.charge.amount)]
            await AuditTrail(session).record(
                actor.id, AuditAction.BORROWING_RETURN, _loan_target(borrowing), changes=changes
            )
        return borrowing

    @staticmethod
    async def _locked(borrowings: BorrowingRepository, borrowing_id: int) -> Borrowing:
        """The borrowing and its book, both rows locked."""
        borrowing = await borrowings.get(
            borrowing_id, with_book=True, with_payments=True, for_update=True
        )
        assert borrowing is not None  # borrowings are never deleted
        return borrowing


def _loan_target(borrowing: Borrowing) -> Target:
    return Target(AuditTarget.BORROWING, borrowing.id, borrowing.user_id, borrowing.book_id)
