"""Where a copy goes: the one place that changes a book's shelf count and hands copies to
its queue of holds. Books (staff adding or withdrawing copies), borrowings (lending and
returning) and holds (cancelling, expiring) all move copies through here.

Call these in the transaction that frees or takes the copy, with the book's row locked:
every change to a book's shelf count and to its holds happens under that lock, so no copy
goes to two holds and no hold is passed over. Invariant, per book: copies on the shelf +
copies on loan + copies put aside for READY holds stay constant, except when staff add or
remove copies.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from library_service.circulation.repository import QueueRepository
from library_service.core import clock
from library_service.core.config import Settings
from library_service.models import Book, Borrowing, Hold, HoldStatus
from library_service.notifications import messages, notices
from library_service.notifications.service import (
    MemberNoticeService,
    NotificationService,
    Recipient,
)


async def release_copies(
    session: AsyncSession, book: Book, *, count: int = 1, today: date, settings: Settings
) -> list[Hold]:
    """Copies of `book` just freed (a return, staff adding copies, a READY hold cancelled
    or expired) go to the oldest WAITING holds, which become READY until today +
    HOLD_PICKUP_DAYS; only copies no hold waits for go back on the shelf. Returns the holds
    that got one."""
    waiting = (
        []
        if book.withdrawn
        else await QueueRepository(session).oldest_waiting(book.id, limit=count)
    )
    ready_until = today + timedelta(days=settings.HOLD_PICKUP_DAYS)
    for hold in waiting:
        hold.status = HoldStatus.READY.value
        hold.ready_until = ready_until
        text = messages.hold_ready(hold, book, hold.user.email)
        await NotificationService(session).record("hold_ready", text)
        draft = notices.hold_ready(
            hold_id=hold.id,
            book_id=book.id,
            title=book.title,
            author=book.author,
            until=ready_until,
        )
        await MemberNoticeService(session).record(Recipient(hold.user_id, hold.user.email), draft)
    book.inventory += count - len(waiting)
    return list(waiting)


def take_from_shelf(book: Book) -> None:
    """A copy leaves the shelf on loan (the rules have checked that one is there)."""
    book.inventory -= 1


def remove_from_shelf(book: Book, count: int) -> None:
    """Staff take `count` copies out of the library (lost, worn out)."""
    book.inventory -= count


async def take_held_copy(session: AsyncSession, hold_id: int, borrowing: Borrowing) -> None:
    """The member of a READY hold borrows its copy: the hold is FULFILLED."""
    hold = await QueueRepository(session).hold(hold_id)
    assert hold is not None
    assert hold.status == HoldStatus.READY.value
    close(hold, HoldStatus.FULFILLED)
    hold.borrowing_id = borrowing.id


def close(hold: Hold, status: HoldStatus) -> None:
    hold.status = status.value
    hold.closed_at = clock.now()


async def cancel_all(session: AsyncSession, book: Book, *, today: date, settings: Settings) -> None:
    """`book` was withdrawn: its open holds are cancelled, staff are told whom to tell, and
    copies put aside for them go back on the shelf."""
    put_aside = 0
    for hold in await QueueRepository(session).open_for_book(book.id):
        put_aside += hold.status == HoldStatus.READY.value
        close(hold, HoldStatus.CANCELLED)
        text = messages.hold_cancelled_by_withdrawal(hold, book, hold.user.email)
        await NotificationService(session).record("hold_cancelled", text)
        draft = notices.hold_cancelled(title=book.title, author=book.author)
        await MemberNoticeService(session).record(Recipient(hold.user_id, hold.user.email), draft)
    if put_aside:
        await release_copies(session, book, count=put_aside, today=today, settings=settings)
