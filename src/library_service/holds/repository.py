from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, Label, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, joinedload

from library_service.core.db import AnyRow, AnySelect
from library_service.core.pagination import PageParams, fetch_page
from library_service.holds import rules
from library_service.holds.rules import PlacementFacts
from library_service.holds.schemas import HoldFilters
from library_service.models import OPEN_HOLD_STATUSES, Book, Borrowing, Hold, HoldStatus

WAITING = HoldStatus.WAITING.value
READY = HoldStatus.READY.value


@dataclass(frozen=True, slots=True)
class HoldView:
    """A hold as members see it: with its book and, while it waits, its place in the queue."""

    id: int
    status: str
    user_id: int
    book: Book
    position: int | None
    ready_until: date | None
    borrowing_id: int | None
    created_at: datetime


def _position() -> Label[int | None]:
    """The place of a WAITING hold in its book's queue (1 = next); NULL otherwise."""
    ahead = aliased(Hold)
    waiting_up_to = (
        select(func.count())
        .where(ahead.book_id == Hold.book_id, ahead.status == WAITING, ahead.id <= Hold.id)
        .scalar_subquery()
    )
    return case((Hold.status == WAITING, waiting_up_to), else_=None).label("position")


class HoldRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(
        self, hold_id: int, *, for_update: bool = False, with_member: bool = False
    ) -> Hold | None:
        statement = select(Hold).where(Hold.id == hold_id)
        if with_member:
            statement = statement.options(joinedload(Hold.user, innerjoin=True))
        if for_update:  # the hold's row only, not its member's
            statement = statement.with_for_update(of=Hold)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def view(self, hold_id: int, *, user_id: int | None = None) -> HoldView | None:
        """A hold with its book and position; with `user_id`, only if it is theirs."""
        statement = _views().where(Hold.id == hold_id, *_owned_by(user_id))
        row = (await self.session.execute(statement)).first()
        return _view(row) if row else None

    async def list(
        self, filters: HoldFilters, page: PageParams, *, estimate_ttl: float = 0
    ) -> tuple[Sequence[HoldView], int]:
        conditions = list(_owned_by(filters.user_id))
        if filters.book_id is not None:
            conditions.append(Hold.book_id == filters.book_id)
        if filters.status is not None:
            conditions.append(Hold.status == filters.status.value)
        statement = _views().where(*conditions).order_by(Hold.id.desc())
        counted = select(Hold.id).where(*conditions)  # every hold has its book
        rows, total = await fetch_page(
            self.session,
            statement,
            page,
            counted=counted,
            filters=filters,
            estimate_ttl=estimate_ttl,
        )
        return [_view(row) for row in rows], total

    async def uncollected(self, *, today: date, limit: int) -> Sequence[int]:
        """READY holds whose pickup day has passed, oldest first."""
        statement = (
            select(Hold.id)
            .where(rules.uncollected_clause(today=today))
            .order_by(Hold.ready_until, Hold.id)
            .limit(limit)
        )
        return (await self.session.scalars(statement)).all()

    async def placement_facts(self, user_id: int, book_id: int) -> PlacementFacts:
        open_holds = Hold.user_id == user_id, Hold.status.in_(OPEN_HOLD_STATUSES)
        active_loan = Borrowing.user_id == user_id, Borrowing.actual_return_date.is_(None)
        statement = select(
            select(func.count()).where(*open_holds).scalar_subquery().label("open_holds"),
            select(Hold.id).where(*open_holds, Hold.book_id == book_id).exists().label("holds"),
            select(Borrowing.id)
            .where(*active_loan, Borrowing.book_id == book_id)
            .exists()
            .label("borrows"),
        )
        row = (await self.session.execute(statement)).one()
        return PlacementFacts(
            open_holds=row.open_holds,
            holds_this_book=row.holds,
            borrows_this_book=row.borrows,
        )

    async def add(self, hold: Hold) -> Hold:
        self.session.add(hold)
        await self.session.flush()
        return hold


def _owned_by(user_id: int | None) -> tuple[ColumnElement[bool], ...]:
    return () if user_id is None else (Hold.user_id == user_id,)


def _views() -> AnySelect:
    return select(Hold, Book, _position()).join(Book, Book.id == Hold.book_id)


def _view(row: AnyRow) -> HoldView:
    hold = row.Hold
    return HoldView(
        id=hold.id,
        status=hold.status,
        user_id=hold.user_id,
        book=row.Book,
        position=row.position,
        ready_until=hold.ready_until,
        borrowing_id=hold.borrowing_id,
        created_at=hold.created_at,
    )
