"""The worker's expiry job: a READY hold not collected by its last pickup day expires the day
after, and its copy goes to the next in line (or back on the shelf). Safe to run twice."""

from __future__ import annotations

from library_service.models import Hold, Notification
from tests.factories import (
    copies,
    count,
    day,
    expire_holds,
    fetch,
    holds_of,
    inventory,
    notification_texts,
    snapshot,
)


async def test_nothing_expires_on_the_last_pickup_day(client, factory, app, db, settings, sandbox):
    member, next_member = await factory.member(), await factory.member()
    book = await factory.book(inventory=0)
    hold = await factory.hold(member, book, status="READY", ready_until=day(3))
    await factory.hold(next_member, book)
    before = await snapshot(db, sandbox)
    for on in (0, 2, 3):
        assert await expire_holds(app, db, settings, on=on) == 0
    assert await snapshot(db, sandbox) == before
    assert (await fetch(db, Hold, hold.id)).status == "READY"


async def test_an_uncollected_copy_goes_to_the_next_in_line(client, factory, app, db, settings):
    member, next_member, last = [await factory.member(email=f"m{i}@example.com") for i in range(3)]
    book = await factory.book(inventory=0, title="Emma")
    hold = await factory.hold(member, book, status="READY", ready_until=day(3))
    second = await factory.hold(next_member, book)
    third = await factory.hold(last, book)

    assert await expire_holds(app, db, settings, on=4) == 1

    expired = await fetch(db, Hold, hold.id)
    assert expired.status == "EXPIRED"
    assert expired.closed_at is not None
    assert expired.borrowing_id is None
    ready = await fetch(db, Hold, second.id)
    assert (ready.status, ready.ready_until) == ("READY", day(7))
    assert (await fetch(db, Hold, third.id)).status == "WAITING"
    assert await copies(db, book.id) == {"shelf": 0, "on_loan": 0, "ready": 1}

    [expired_text] = await notification_texts(db, "hold_expired")
    assert expired_text == (
        f"⌛ Hold #{hold.id} expired: m0@example.com did not collect «Emma» by 2026-03-04; "
        "the copy goes to m1@example.com"
    )
    [ready_text] = await notification_texts(db, "hold_ready")
    assert "Put aside «Emma» for m1@example.com until 2026-03-08" in ready_text


async def test_an_uncollected_copy_goes_back_on_the_shelf(client, factory, app, db, settings):
    member = await factory.member(email="late@example.com")
    book = await factory.book(inventory=0, title="Emma")
    hold = await factory.hold(member, book, status="READY", ready_until=day(3))

    assert await expire_holds(app, db, settings, on=9) == 1

    assert (await fetch(db, Hold, hold.id)).status == "EXPIRED"
    assert await inventory(db, book.id) == 1
    assert await notification_texts(db, "hold_expired") == [
        f"⌛ Hold #{hold.id} expired: late@example.com did not collect «Emma» by 2026-03-04; "
        "the copy goes back on the shelf"
    ]
    assert await notification_texts(db, "hold_ready") == []


async def test_running_the_job_twice_changes_nothing_more(
    client, factory, app, db, settings, sandbox
):
    members = [await factory.member() for _ in range(4)]
    emma, persuasion = await factory.books(
        [{"inventory": 0, "title": "Emma"}, {"inventory": 0, "title": "Persuasion"}]
    )
    await factory.hold(members[0], emma, status="READY", ready_until=day(3))
    await factory.hold(members[1], emma)
    await factory.hold(members[2], persuasion, status="READY", ready_until=day(2))
    await factory.hold(members[3], persuasion, status="READY", ready_until=day(5))

    assert await expire_holds(app, db, settings, on=4) == 2
    after_first = await snapshot(db, sandbox)
    assert await expire_holds(app, db, settings, on=4) == 0
    assert await snapshot(db, sandbox) == after_first

    assert [h.status for h in await holds_of(db, emma.id)] == ["EXPIRED", "READY"]
    assert [h.status for h in await holds_of(db, persuasion.id)] == ["EXPIRED", "READY"]
    assert await copies(db, emma.id) == {"shelf": 0, "on_loan": 0, "ready": 1}
    assert await copies(db, persuasion.id) == {"shelf": 1, "on_loan": 0, "ready": 1}
    assert await count(db, Notification, Notification.kind == "hold_expired") == 2


async def test_the_next_member_gets_a_full_pickup_window_from_the_expiry_day(
    client, factory, app, db, settings
):
    """The second hold expires in its turn, and the copy moves on again."""
    members = [await factory.member() for _ in range(3)]
    book = await factory.book(inventory=0)
    first = await factory.hold(members[0], book, status="READY", ready_until=day(1))
    second = await factory.hold(members[1], book)
    third = await factory.hold(members[2], book)

    assert await expire_holds(app, db, settings, on=2) == 1
    assert (await fetch(db, Hold, second.id)).ready_until == day(5)
    assert await expire_holds(app, db, settings, on=5) == 0
    assert await expire_holds(app, db, settings, on=6) == 1
    assert [h.status for h in await holds_of(db, book.id)] == ["EXPIRED", "EXPIRED", "READY"]
    assert (await fetch(db, Hold, third.id)).ready_until == day(9)
    assert (await fetch(db, Hold, first.id)).status == "EXPIRED"


async def test_collected_and_waiting_holds_never_expire(client, factory, app, db, settings):
    member, other = await factory.member(), await factory.member()
    book = await factory.book(inventory=0)
    borrowing = await factory.borrowing(member, book, due=day(7))
    await factory.hold(member, book, status="FULFILLED", ready_until=day(1), borrowing=borrowing)
    await factory.hold(other, book)
    assert await expire_holds(app, db, settings, on=30) == 0
    assert [h.status for h in await holds_of(db, book.id)] == ["FULFILLED", "WAITING"]
    assert await inventory(db, book.id) == 0
